"""benchmarks/pixel_baseline.py: the shallow least-squares reference the deep runs are read against."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_script

from dscsc_core.plugin_api.datapaths import DataRoot

ROOT = Path(__file__).resolve().parent.parent
pixel_baseline = benchmark_script("pixel_baseline")


def test_coefficients_stay_inside_each_subspace():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((20, 4)))[0]
    # Two 2-D subspaces (orthogonal), 10 points each; rows are samples.
    pixels = np.vstack([rng.standard_normal((10, 2)) @ basis[:, :2].T, rng.standard_normal((10, 2)) @ basis[:, 2:].T])
    coef = pixel_baseline.least_squares_coefficients(pixels, 0.01)
    assert np.all(np.diag(coef) == 0)
    across = np.abs(coef[:10, 10:]).max() + np.abs(coef[10:, :10]).max()
    within = np.abs(coef[:10, :10]).mean()
    assert across < 1e-8 < within


def test_a_larger_lambda_shrinks_the_coefficients():
    pixels = np.random.default_rng(1).standard_normal((30, 8))
    small, large = (np.abs(pixel_baseline.least_squares_coefficients(pixels, lam)).sum() for lam in (0.01, 1.0))
    assert large < small


ORL_FILE = DataRoot.resolve().path / "orl" / "ORL_32x32.mat"


@pytest.mark.skipif(not ORL_FILE.is_file(), reason="ORL not under the data root")
def test_script_scores_every_lambda_with_both_clusterers(tmp_path):
    output = tmp_path / "lsr.md"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pixel_baseline.py"), "--datasets", "orl",
                    "--lambdas", "0.1,1", "--threads", "1", "--output", str(output)], check=True, cwd=tmp_path,
                   capture_output=True)
    rows = [line for line in output.read_text().splitlines() if line.startswith("| orl |")]
    assert [row.split(" | ")[1] for row in rows] == ["0.1", "1"]
    accuracies = [float(cell) for row in rows for cell in row.split(" | ")[2:6:2]]
    # Raw-pixel self-expression separates most of the 40 faces (measured 64-81 %); chance is 2.5 %.
    assert all(50.0 < acc <= 100.0 for acc in accuracies)
    assert "command:" in output.read_text()
