"""`--preset`, `--data-root`, `dscsc presets`, `dscsc tune` and `dscsc bench` through the CLI."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import assert_one_line_error, invoke


def test_presets_lists_builtin_and_plugin_presets():
    result = invoke("presets")
    assert result.exit_code == 0, result.output
    for name in ("orl", "umist", "yaleb", "coil20", "mnist1000", "tiny-synthetic"):
        assert name in result.stdout


def test_run_with_a_preset_then_flags_override_it():
    result = invoke("run", "--preset", "tiny-synthetic", "--epochs", "1", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["config"]["pretrain_epochs"] == 2  # from the preset
    assert summary["config"]["epochs"] == 1  # the flag wins
    assert summary["data"]["n_samples"] == 30  # the preset's dataset parameters reached the plugin


def test_config_file_sits_between_preset_and_flags(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("pretrain_epochs = 1\nepochs = 1\nseed = 4\n")
    result = invoke("run", "--preset", "tiny-synthetic", "--config", str(config), "--seed", "5", "--json")
    summary = json.loads(result.stdout)
    assert (summary["config"]["pretrain_epochs"], summary["seed"]) == (1, 5)


def test_unknown_preset_names_the_choices(tmp_path):
    result = invoke("run", "--preset", "orll", "--out", str(tmp_path / "x"))
    assert_one_line_error(result, "unknown preset 'orll'", "Did you mean 'orl'?")
    assert not (tmp_path / "x").exists()


def test_missing_data_file_names_file_place_and_fix(tmp_path):
    result = invoke("run", "--preset", "orl", "--data-root", str(tmp_path), "--out", str(tmp_path / "x"))
    assert_one_line_error(result, "orl/ORL_32x32.mat", str(tmp_path), "--data-root", "DSCSC_DATA")
    assert not (tmp_path / "x").exists()


def test_data_root_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DSCSC_DATA", str(tmp_path))
    result = invoke("run", "--dataset", "umist", "--epochs", "1")
    assert_one_line_error(result, "umist/umist-32-32.mat", str(tmp_path), "from DSCSC_DATA")


def test_user_npz_file_runs_end_to_end(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "mine.npz", images=images, labels=np.repeat(["a", "b", "c"], 4))
    result = invoke("run", "--dataset", "npz", "--path", str(tmp_path / "mine.npz"),
                    "--pretrain-epochs", "1", "--epochs", "1", "--k", "2", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["data"]["n_clusters"] == 3 and summary["data"]["n_samples"] == 12


def test_tune_ranks_candidates_by_silhouette_and_writes_the_best(tmp_path):
    best = tmp_path / "best.toml"
    result = invoke("tune", "--preset", "tiny-synthetic", "--grid", "k=2,4", "--grid", "temperature=0.5",
                    "--write", str(best))
    assert result.exit_code == 0, result.output
    assert "silhouette" in result.stdout
    chosen = tomllib.loads(best.read_text())
    assert chosen["temperature"] == 0.5
    assert chosen["params"]["k"] in {2, 4}
    rerun = invoke("run", "--preset", "tiny-synthetic", "--config", str(best), "--json")
    assert rerun.exit_code == 0, rerun.output


@pytest.mark.parametrize("grid, fragment", [("k", "write NAME=V1,V2"), ("k=", "write NAME=V1,V2"),
                                            ("k=many", "expects int")])
def test_tune_bad_grid_is_one_line(grid, fragment):
    assert_one_line_error(invoke("tune", "--preset", "tiny-synthetic", "--grid", grid), fragment)


def test_bench_runs_seeds_reuses_them_and_reports_both_clusterers(tmp_path):
    out = tmp_path / "runs"
    first = invoke("bench", "--preset", "tiny-synthetic", "--seeds", "2", "--out", str(out))
    assert first.exit_code == 0, first.output
    assert first.stderr.count("ran tiny-synthetic") == 2
    assert "spectral" in first.stdout and "dsc-post" in first.stdout
    again = invoke("bench", "--preset", "tiny-synthetic", "--seeds", "2", "--out", str(out))
    assert again.stderr.count("reused tiny-synthetic") == 2
    (stored,) = (out / "tiny-synthetic").glob("seed1-*.json")  # seed and settings fingerprint
    record = json.loads(stored.read_text())
    assert record["seed"] == 1 and set(record["scores"]) == {"spectral", "dsc-post"}


def test_bench_unknown_clusterer_fails_before_running(tmp_path):
    result = invoke("bench", "--preset", "tiny-synthetic", "--clusterers", "spectrall", "--out", str(tmp_path / "r"))
    assert_one_line_error(result, "unknown clusterer 'spectrall'")
    assert not (tmp_path / "r").exists()
