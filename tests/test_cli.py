"""The command line through Typer's runner: good runs, plugin listing and every bad-input case."""

import json

import pytest
from conftest import assert_one_line_error, invoke

FAST = ["run", "--dataset", "synthetic", "--pretrain-epochs", "2", "--epochs", "2"]


def test_plugins_list_shows_every_kind():
    result = invoke("plugins", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    names = {(row["kind"], row["name"]) for row in rows}
    assert {("encoder", "conv3"), ("miner", "knn"), ("clusterer", "dsc-post"), ("dataset", "digits")} <= names
    knn = next(row for row in rows if row["name"] == "knn")
    assert knn["distribution"] == "dscsc" and knn["params"][0]["name"] == "k"
    defaults = {(row["kind"], row["name"]) for row in rows if row["default"]}
    assert defaults == {("dataset", "digits"), ("encoder", "conv1"), ("augmentation", "geometric"),
                        ("miner", "knn"), ("regularizer", "l2"), ("clusterer", "dsc-post")}


def test_plugins_list_table():
    result = invoke("plugins", "list")
    assert result.exit_code == 0
    assert "conv3" in result.stdout and "dsc-post" in result.stdout


def test_run_writes_results(tmp_path):
    out = tmp_path / "run"
    result = invoke(*FAST, "--k", "3", "--out", str(out), "--json", "--no-figures")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary["metrics"]) == {"acc", "nmi", "ari"}
    assert {p.name for p in out.iterdir()} == {"result.json", "labels.npy", "coef.npy", "affinity.npy",
                                               "embedding.npy", "truth.npy", "metrics.csv"}
    stored = json.loads((out / "result.json").read_text())
    assert stored["components"]["miner"]["params"] == {"k": 3}
    assert stored["seed"] == 0 and stored["config"]["epochs"] == 2
    assert {"pretrain_s", "finetune_s", "cluster_s", "total_s"} <= set(stored["timings"])
    assert stored["components"]["encoder"]["distribution"] == "dscsc"


def test_run_table_output():
    result = invoke(*FAST)
    assert result.exit_code == 0, result.output
    assert "ACC" in result.stdout and "NMI" in result.stdout and "seconds" in result.stdout


def test_config_file_sits_between_defaults_and_flags(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('dataset = "synthetic"\nepochs = 3\npretrain_epochs = 1\nseed = 4\n[params.miner]\nk = 2\n')
    result = invoke("run", "--config", str(config), "--epochs", "1", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["config"]["epochs"] == 1  # the flag wins
    assert summary["config"]["seed"] == 4  # the file beats the default
    assert summary["components"]["miner"]["params"]["k"] == 2


def test_plugin_parameters_reach_their_plugin():
    result = invoke(*FAST, "--encoder", "conv3", "--channels", "2,2,3", "--degrees=5", "--miner.k", "4", "--json")
    assert result.exit_code == 0, result.output
    parts = json.loads(result.stdout)["components"]
    assert parts["encoder"]["params"]["channels"] == [2, 2, 3]
    assert parts["augment"]["params"]["degrees"] == 5.0
    assert parts["miner"]["params"]["k"] == 4


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "never-created"


def run_bad(out_dir, *args):
    result = invoke(*FAST, *args, "--out", str(out_dir))
    assert not out_dir.exists(), "a failed run must leave nothing behind"
    return result


@pytest.mark.parametrize(
    "option, value, choices, closest",
    [
        ("--miner", "knnn", "knn, none", "knn"),
        ("--encoder", "conv4", "conv1, conv3", "conv3"),
        ("--dataset", "digit", "digits", "digits"),
        ("--clusterer", "spectra", "dsc-post, sparse-spectral, spectral", "spectral"),
        ("--augment", "geometry", "geometric, none", "geometric"),
        ("--regularizer", "l3", "l1, l2", None),
    ],
)
def test_unknown_plugin_names_choices_and_closest(out_dir, option, value, choices, closest):
    result = run_bad(out_dir, option, value)
    assert_one_line_error(result, f"'{value}'", choices)
    if closest:
        assert f"Did you mean '{closest}'?" in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--k", "-1"], "must be >= 0"),
        (["--k", "199"], "smaller than N-1 = 199"),
        (["--k", "500"], "smaller than N-1"),
        (["--k", "many"], "expects int"),
        (["--epochs", "-1"], "'epochs' must be >= 0"),
        (["--pretrain-epochs", "-3"], "'pretrain_epochs' must be >= 0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--n-clusters", "500"], "fewer than the 500 clusters"),
        (["--dataset", "nan-images"], "NaN or Inf"),
        (["--dataset", "inf-images"], "NaN or Inf"),
        (["--dataset", "tiny", "--count", "0"], "is empty"),
        (["--dataset", "tiny", "--labelled", "false"], "--n-clusters"),
        (["--nonsense", "3"], "unknown plugin parameter --nonsense: no selected plugin declares it"),
        (["--temperature", "0"], "'temperature' must be >="),
    ],
)
def test_bad_input_gets_one_line(out_dir, args, fragment):
    assert_one_line_error(run_bad(out_dir, *args), fragment)


def test_missing_cuda_is_a_clear_error(out_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(run_bad(out_dir, "--device", "cuda"), "CUDA is not available")


def test_corrupt_config_file(out_dir, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = [unclosed\n")
    assert_one_line_error(run_bad(out_dir, "--config", str(bad)), "not valid TOML")


def test_missing_config_file(out_dir, tmp_path):
    assert_one_line_error(run_bad(out_dir, "--config", str(tmp_path / "nope.toml")), "config file not found")


def test_unknown_setting_in_config_file(out_dir, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("epoch = 3\n")
    assert_one_line_error(run_bad(out_dir, "--config", str(bad)), "unknown setting 'epoch'")


def test_output_path_that_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert_one_line_error(invoke(*FAST, "--out", str(target)), "not a folder")
    assert target.read_text() == "keep me"


def test_the_readme_example_runs_as_written():
    """`dscsc run --encoder conv3 --miner knn --k 15` as the README writes it, on the default dataset
    (with one epoch per stage: the names and routing are what is checked here)."""
    result = invoke("run", "--encoder", "conv3", "--miner", "knn", "--k", "15", "--json",
                    "--pretrain-epochs", "1", "--epochs", "1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["components"]["encoder"]["name"] == "conv3"
    assert summary["components"]["miner"]["params"] == {"k": 15}
    assert summary["components"]["dataset"]["name"] == "digits"
    assert summary["data"]["n_samples"] == 1797


@pytest.mark.parametrize("command", ["run", "tune", "ablate", "bench"])
def test_every_run_setting_is_an_option_stating_its_default(command):
    """The options are made from RUN_SETTINGS: each setting has its flag, and the help states its declared default."""
    import re

    import typer.main

    import dscsc_cli.main as cli
    from dscsc_core.settings import RUN_SETTINGS

    options = {param.name: param for param in typer.main.get_command(cli.app).commands[command].params}
    # tune, ablate and bench run seeds 0..N-1 themselves, and each run in one process (only run has --nproc)
    runs_seeds = command != "run"
    assert {p.name for p in RUN_SETTINGS} - set(options) == ({"seed", "nproc"} if runs_seeds else set())
    for param in RUN_SETTINGS:
        if param.name not in options:
            continue
        option = options[param.name]
        assert option.opts == ["--" + param.name.replace("_", "-")]
        assert option.help.startswith(param.help)
        stated = re.search(r"\(default: ([^)]+)\)\.$", option.help)
        if param.default is not None:
            assert param.parse(stated.group(1)) == param.default, param.name


def test_run_help_shows_every_setting_with_its_own_help():
    text = invoke("run", "--help", env={"COLUMNS": "250"}).stdout
    assert "--pretrain-tol" in text and "stop Stage I when reconstruction improves less" in text


def test_each_stages_progress_bar_names_the_terms_it_trains():
    from dscsc_cli.display import StageProgress
    from dscsc_core.training.result import EpochReport

    progress = StageProgress()
    progress.update(EpochReport("pretrain", 1, 3, {"drh": 2.0, "total": 2.0}))
    progress.update(EpochReport("finetune", 1, 3, {"drh": 2.0, "sch": 1.0, "sem": 0.5, "total": 3.5}))
    titles = [task.description for task in progress.progress.tasks]
    assert titles == ["Stage I  (DRH)", "Stage II (DRH + SCH + SEM)"]
