"""benchmarks/pixel_baseline.py: the shallow least-squares reference the deep runs are read against, run as
the product's ``lsr`` solver through the pipeline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import benchmark_script

from dscsc_core.plugin_api.datapaths import DataRoot
from dscsc_plugins.datasets import SyntheticSubspacesSource
from dscsc_plugins.solvers import LeastSquaresRegression

ROOT = Path(__file__).resolve().parent.parent
pixel_baseline = benchmark_script("pixel_baseline")

# Three 3-D subspaces, 20 images each, as a run reads them (times input_scale).
SYNTHETIC = {"dataset": "synthetic", "params": {"dataset": {"subspaces": 3, "per_subspace": 20}}, "seed": 0}


def _pixels(input_scale: float) -> np.ndarray:
    images = SyntheticSubspacesSource(subspaces=3, per_subspace=20).read().images
    return images.flatten(1).double().numpy() * input_scale


@pytest.mark.parametrize("input_scale", [1.0, 10.0])
def test_the_run_is_the_lsr_solver_with_lambda_relative_to_the_pixels_it_reads(registry, input_scale):
    result = pixel_baseline.solve(registry, [SYNTHETIC, {"input_scale": input_scale}], 0.05)
    assert result.summary["components"]["solver"]["name"] == "lsr"
    assert result.history == [] and result.timings.pretrain_s == 0.0  # nothing was trained
    pixels = _pixels(input_scale)
    scale = float(np.mean(np.sum(pixels ** 2, axis=1)))
    expected = LeastSquaresRegression(lam=0.05 * scale, diagonal="zero", normalize=False).solve(pixels)
    np.testing.assert_allclose(result.coef, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
    assert np.all(np.diag(result.coef) == 0)


def test_lambda_stays_relative_whatever_the_input_scale(registry):
    plain, scaled = (pixel_baseline.solve(registry, [SYNTHETIC, {"input_scale": scale}], 0.05).coef
                     for scale in (1.0, 255.0))
    np.testing.assert_allclose(scaled, plain, rtol=0, atol=1e-9 * np.abs(plain).max())


def test_both_clusterers_score_the_same_c_and_separate_the_subspaces(registry):
    result = pixel_baseline.solve(registry, [SYNTHETIC], 0.01)
    assert set(result.clusterings) == set(pixel_baseline.CLUSTERERS)
    coef = np.abs(result.coef)
    blocks = np.repeat(np.arange(3), 20)
    across = coef[blocks[:, None] != blocks[None, :]].max()
    within = coef[blocks[:, None] == blocks[None, :]].mean()
    assert across < within
    assert all(scored.scores["acc"] == 1.0 for scored in result.clusterings.values())


def test_a_larger_lambda_shrinks_the_coefficients(registry):
    small, large = (np.abs(pixel_baseline.solve(registry, [SYNTHETIC], lam).coef).sum() for lam in (0.01, 1.0))
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
    # Raw-pixel self-expression separates most of the 40 faces (measured 63-80 % with 2 threads); chance is 2.5 %.
    assert all(50.0 < acc <= 100.0 for acc in accuracies)
    assert "command:" in output.read_text()
