"""One-file plugins (--plugin, a config's plugins list) and `dscsc plugins show`."""

from __future__ import annotations

import json

from test_cli import assert_one_line_error, invoke, with_test_plugin  # noqa: F401  (autouse fixture)

ONE_FILE_PLUGIN = '''
import torch
from dscsc_core import NegativeMiner, Param, hookimpl

class EveryOther(NegativeMiner):
    name = "every-other"
    summary = "samples of the other index parity are negatives"
    params = (Param("offset", int, 0, "parity offset", min=0),)

    def mine(self, z, coef):
        index = torch.arange(z.shape[0]) + self.offset
        return (index[:, None] % 2) != (index[None, :] % 2)

@hookimpl
def dscsc_register_miners(register):
    register(EveryOther)
'''
FAST = ["--dataset", "synthetic", "--pretrain-epochs", "1", "--epochs", "1", "--json"]


def write_plugin(folder):
    path = folder / "every_other.py"
    path.write_text(ONE_FILE_PLUGIN)
    return path


def test_plugin_file_on_the_command_line(tmp_path):
    path = write_plugin(tmp_path)
    result = invoke("run", "--plugin", str(path), "--miner", "every-other", "--offset", "1", *FAST)
    assert result.exit_code == 0, result.output
    miner = json.loads(result.stdout)["components"]["miner"]
    assert (miner["name"], miner["params"], miner["distribution"]) == ("every-other", {"offset": 1}, "local")


def test_plugins_list_in_a_config_file_is_relative_to_the_file(tmp_path):
    write_plugin(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text('plugins = ["every_other.py"]\nminer = "every-other"\n')
    result = invoke("run", "--config", str(config), *FAST)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["components"]["miner"]["name"] == "every-other"


def test_plugin_file_shows_in_the_listing(tmp_path):
    result = invoke("plugins", "list", "--json", "--plugin", str(write_plugin(tmp_path)))
    names = {(row["kind"], row["name"]) for row in json.loads(result.stdout)}
    assert ("miner", "every-other") in names


def test_missing_plugin_file_is_one_line(tmp_path):
    result = invoke("run", "--plugin", str(tmp_path / "nope.py"), *FAST)
    assert_one_line_error(result, "plugin file not found", "nope.py")


def test_plugin_that_fails_to_import_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert_one_line_error(invoke("run", "--plugin", str(broken), *FAST), "failed to import", "boom")


def test_unknown_module_is_one_line():
    assert_one_line_error(invoke("run", "--plugin", "no_such_module_xyz", *FAST), "no_such_module_xyz")


def test_bad_plugins_entry_in_config(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('plugins = "every_other.py"\n')
    assert_one_line_error(invoke("run", "--config", str(config), *FAST), "'plugins' must be a list")


def test_show_prints_parameters_and_provider():
    result = invoke("plugins", "show", "clusterer", "dsc-post")
    assert result.exit_code == 0, result.output
    for fragment in ("--ratio", "float", "0.2", ">= 0 and <= 1", "builtins", "--assign-labels", "discretize"):
        assert fragment in result.stdout


def test_show_unknown_kind_and_name():
    assert_one_line_error(invoke("plugins", "show", "mine", "knn"), "unknown plugin kind 'mine'", "miner")
    assert_one_line_error(invoke("plugins", "show", "miner", "knnn"), "unknown miner 'knnn'", "Did you mean 'knn'?")


def test_tune_and_ablate_load_local_plugins_like_run(tmp_path):
    """Every command builds its runs the same way: a config's plugins list and --plugin both count."""
    write_plugin(tmp_path)
    config = tmp_path / "base.toml"
    config.write_text('plugins = ["every_other.py"]\ndataset = "synthetic"\npretrain_epochs = 1\nepochs = 1\n')
    tuned = invoke("tune", "--config", str(config), "--grid", "miner=every-other,knn")
    assert tuned.exit_code == 0, tuned.output
    assert "miner=every-other" in tuned.stdout
    plain = tmp_path / "plain.toml"
    plain.write_text('dataset = "synthetic"\npretrain_epochs = 1\nepochs = 1\n')
    ablated = invoke("ablate", "--config", str(plain), "--plugin", str(tmp_path / "every_other.py"),
                     "--grid", "miner=every-other", "--seeds", "1", "--out", str(tmp_path / "abl"))
    assert ablated.exit_code == 0, ablated.output
    assert "ran miner=every-other seed 0" in ablated.stderr
