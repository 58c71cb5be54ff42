"""Run folders you can look at: metrics.csv, figures, report.md, `dscsc report` and `dscsc compare`."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import assert_one_line_error, invoke

from dscsc_core.run.figures import FIGURES, matched_confusion

RUN = ["run", "--preset", "tiny-synthetic", "--pretrain-epochs", "2", "--epochs", "4", "--eval-every", "2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from typer.testing import CliRunner

    import dscsc_cli.main as cli
    from dscsc_core.plugin_api.registry import PluginLoader

    def load(local_plugins=()):
        loader = PluginLoader(strict=True)
        loader.load_entry_points()
        loader.add_module("support_plugin")
        return loader.collect()

    original = cli._load_registry
    cli._load_registry = load
    try:
        out = tmp_path_factory.mktemp("runs") / "a"
        result = CliRunner().invoke(cli.app, [*RUN, "--out", str(out)])
        assert result.exit_code == 0, result.output
    finally:
        cli._load_registry = original
    return out


def test_metrics_csv_has_every_epoch_term_and_periodic_scores(run_dir):
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [(r["stage"], r["epoch"]) for r in rows] == [("pretrain", "1"), ("pretrain", "2")] + [
        ("finetune", str(e)) for e in range(1, 5)]
    assert all(float(r["drh"]) > 0 and float(r["sch"]) > 0 for r in rows)
    assert all(r["sem"] == "" for r in rows[:2]) and all(float(r["sem"]) > 0 for r in rows[2:])
    scored = [r["epoch"] for r in rows if r["acc"]]
    assert scored == ["2", "4"]
    final = json.loads((run_dir / "result.json").read_text())["metrics"]
    assert float(rows[-1]["acc"]) == pytest.approx(final["acc"])  # the last evaluation is the reported C


def test_every_figure_and_the_report_are_written(run_dir):
    for name in FIGURES:
        path = run_dir / "figures" / name
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = (run_dir / "report.md").read_text()
    assert "| ACC | NMI | ARI |" in report
    for name in FIGURES:
        assert f"figures/{name}" in report


def test_report_rerenders_from_the_files(run_dir):
    (run_dir / "report.md").unlink()
    for path in (run_dir / "figures").iterdir():
        path.unlink()
    result = invoke("report", str(run_dir))
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.md").is_file()
    assert {p.name for p in (run_dir / "figures").iterdir()} == set(FIGURES)


def test_compare_lists_runs(run_dir, tmp_path):
    second = tmp_path / "b"
    assert invoke(*RUN, "--seed", "3", "--no-figures", "--out", str(second)).exit_code == 0
    assert not (second / "figures").exists()
    result = invoke("compare", str(run_dir), str(second), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["seed"] for row in rows] == [0, 3]
    assert all(0 <= row["acc"] <= 1 for row in rows)
    table = invoke("compare", str(run_dir), str(second))
    assert table.exit_code == 0 and "dscsc compare" in table.stdout


def test_report_and_compare_on_a_folder_that_is_not_a_run(tmp_path):
    assert_one_line_error(invoke("report", str(tmp_path / "nope")), "does not exist")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "result.json").write_text("{}")
    assert_one_line_error(invoke("compare", str(tmp_path / "half")), "not a complete run folder", "labels.npy")


def test_matched_confusion_puts_the_matching_on_the_diagonal():
    import numpy as np

    truth = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([2, 2, 0, 0, 1, 1])
    assert np.array_equal(matched_confusion(truth, predicted), 2 * np.eye(3, dtype=int))
