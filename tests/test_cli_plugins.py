"""One-file plugins (--plugin, a config's plugins list) and `dscsc plugins show`."""

from __future__ import annotations

import json
import types

import pytest
from conftest import assert_one_line_error, invoke

import dscsc_cli.main as cli
from dscsc_core import NegativeMiner, hookimpl
from dscsc_core.plugin_api.registry import PluginLoader, PluginOrigin

ONE_FILE_PLUGIN = '''
import torch
from dscsc_core import NegativeMiner, Param, hookimpl

class EveryOther(NegativeMiner):
    name = "every-other"
    summary = "samples of the other index parity are negatives"
    params = (Param("offset", int, 0, "parity offset", min=0),)

    def mine(self, z, coef):
        index = torch.arange(z.shape[0], device=z.device) + self.offset
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


def test_ablate_takes_run_settings_and_a_grid_over_a_plugin_parameter(tmp_path):
    """`--grid offset=0,1` reaches a plugin named with --plugin; the base comes from flags alone, and
    the stored runs keep the parameter's type."""
    path = write_plugin(tmp_path)
    out = tmp_path / "abl"
    result = invoke("ablate", "--plugin", str(path), "--dataset", "synthetic", "--pretrain-epochs", "1",
                    "--epochs", "1", "--miner", "every-other", "--grid", "offset=0,1", "--seeds", "1",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "ran offset=0 seed 0" in result.stderr and "ran offset=1 seed 0" in result.stderr
    stored = json.loads(next((out / "runs" / "offset=1").glob("seed0-*.json")).read_text())
    assert stored["config"]["params"] == {"offset": 1}
    assert (stored["config"]["miner"], stored["config"]["epochs"]) == ("every-other", 1)


class _OtherKnn(NegativeMiner):
    name = "knn"
    summary = "a third party's knn"

    def mine(self, z, coef):
        return z.new_ones(z.shape[0], z.shape[0], dtype=bool)


@pytest.fixture
def installed_clash(monkeypatch):
    """An installed distribution 'dscsc-dupe' whose plugin registers a second miner 'knn'."""

    @hookimpl
    def dscsc_register_miners(register):
        register(_OtherKnn)

    def load(local_plugins=()):
        loader = PluginLoader()  # strictness from DSCSC_STRICT_PLUGINS, as the real command reads it
        loader.add_plugin(types.SimpleNamespace(dscsc_register_miners=dscsc_register_miners), "dupe",
                          PluginOrigin("dscsc-dupe", "0.3"))
        loader.load_entry_points()
        return cli._warned(loader.collect())

    monkeypatch.setattr(cli, "_load_registry", load)


def test_a_name_clash_warns_once_and_every_command_still_works(installed_clash, monkeypatch):
    monkeypatch.delenv("DSCSC_STRICT_PLUGINS", raising=False)
    listed = invoke("plugins", "list", "--json")
    assert listed.exit_code == 0
    assert [line for line in listed.stderr.splitlines() if line] == [
        next(line for line in listed.stderr.splitlines() if line.startswith("warning: miner 'knn'"))]
    assert "uninstall dscsc-dupe or set DSCSC_DISABLE_PLUGINS=dupe" in listed.stderr
    ran = invoke("run", "--dataset", "synthetic", "--pretrain-epochs", "1", "--epochs", "1", "--json")
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["components"]["miner"]["distribution"] == "dscsc"


def test_strict_plugins_turn_a_clash_into_one_error(installed_clash, monkeypatch):
    monkeypatch.setenv("DSCSC_STRICT_PLUGINS", "1")
    assert_one_line_error(invoke("plugins", "list"), "miner 'knn' is registered by plugin 'builtins'",
                          "plugin 'dupe' (distribution dscsc-dupe 0.3)")
