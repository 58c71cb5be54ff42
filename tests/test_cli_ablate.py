"""`dscsc ablate`: a grid of swapped components or settings, over seeds, resumable."""

from __future__ import annotations

import csv

from conftest import assert_one_line_error, invoke


def test_grid_of_kinds_and_params_writes_csv_and_markdown(tmp_path):
    out = tmp_path / "abl"
    result = invoke("ablate", "--preset", "tiny-synthetic", "--grid", "miner=knn,none", "--grid", "augment=none",
                    "--seeds", "2", "--clusterers", "spectral,dsc-post", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr.count("ran ") == 4  # 2 grid points x 2 seeds, each scored by both clusterers
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert {(r["case"], r["clusterer"]) for r in rows} == {
        (case, c) for case in ("miner=knn augment=none", "miner=none augment=none") for c in ("spectral", "dsc-post")}
    assert all(r["seeds"] == "2" and 0 <= float(r["acc_mean"]) <= 1 for r in rows)
    assert "| miner=none augment=none | dsc-post | 2 |" in (out / "ablation.md").read_text()


def test_finished_runs_are_not_rerun(tmp_path):
    args = ["ablate", "--preset", "tiny-synthetic", "--grid", "k=2,3", "--seeds", "1", "--out", str(tmp_path / "a")]
    assert invoke(*args).stderr.count("ran ") == 2
    grown = invoke(*args[:-4], "--seeds", "2", "--out", str(tmp_path / "a"))
    assert grown.stderr.count("reused ") == 2 and grown.stderr.count("ran ") == 2


def test_bad_grid_point_fails_before_anything_runs(tmp_path):
    out = tmp_path / "abl"
    result = invoke("ablate", "--preset", "tiny-synthetic", "--grid", "miner=knn,knnn", "--out", str(out))
    assert_one_line_error(result, "unknown miner 'knnn'")
    assert not out.exists()
    result = invoke("ablate", "--preset", "tiny-synthetic", "--grid", "k=2,-1", "--out", str(out))
    assert_one_line_error(result, "must be >= 0")
    assert not out.exists()
