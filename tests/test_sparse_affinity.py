"""The sparse affinity of the scalable path: each sample's k strongest links of |C|, kept as CSR, clustered by a
sparse eigensolver, written as affinity.npz and pictured from a sample when large."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import invoke
from scipy import sparse

from dscsc_core.errors import DataError
from dscsc_core.run import figures
from dscsc_core.run.report import RunFiles
from dscsc_plugins.clusterers import (
    DscPostClusterer,
    SparseSpectralClusterer,
    sparse_symmetric_affinity,
    strongest_links,
)


def _brute_force_links(coef: np.ndarray, k: int) -> np.ndarray:
    magnitude = np.abs(coef)
    np.fill_diagonal(magnitude, 0.0)
    kept = np.zeros_like(magnitude)
    for i, row in enumerate(magnitude):
        top = np.argsort(-row, kind="stable")[:k]
        kept[i, top] = row[top]
    return kept


@pytest.mark.parametrize("as_sparse", [False, True])
def test_each_row_keeps_exactly_its_k_strongest_links_and_no_self_link(as_sparse, monkeypatch):
    import dscsc_plugins.clusterers as clusterers

    monkeypatch.setattr(clusterers, "_ROW_BLOCK", 7)  # several blocks of rows, the last one short
    coef = np.random.default_rng(0).normal(size=(30, 30))
    links = strongest_links(sparse.csr_matrix(coef) if as_sparse else coef, 4)
    assert sparse.isspmatrix_csr(links) and links.nnz == 30 * 4
    assert np.array_equal(links.toarray(), _brute_force_links(coef, 4))
    affinity = sparse_symmetric_affinity(coef, 4)
    assert abs(affinity - affinity.T).max() == 0 and affinity.diagonal().max() == 0


def test_a_sparse_c_with_fewer_links_than_k_keeps_them_all():
    coef = sparse.csr_matrix(np.diag(np.ones(5), 1)[:5, :5] + np.diag(np.ones(5), -1)[:5, :5])
    assert strongest_links(coef, 10).nnz == coef.nnz


def test_sparse_spectral_recovers_blocks_from_a_sparse_c_of_knn_links():
    rng = np.random.default_rng(1)
    truth = np.repeat(np.arange(4), 50)
    bases = [np.linalg.qr(rng.normal(size=(20, 3)))[0] for _ in range(4)]
    points = np.stack([bases[label] @ rng.normal(size=3) for label in truth])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    cosine = np.abs(points @ points.T)
    coef = sparse.csr_matrix(_brute_force_links(cosine, 8))  # as the scalable path stores C: k entries a row
    result = SparseSpectralClusterer(k=8).fit_predict(coef, 4, seed=0)
    from dscsc_core.metrics import clustering_accuracy

    assert clustering_accuracy(truth, result.labels) == 1.0 and sparse.issparse(result.affinity)


def test_a_clusterer_that_needs_a_dense_c_refuses_a_sparse_one_in_one_line():
    with pytest.raises(DataError, match="clusterer 'dsc-post' needs a dense C.*sparse-spectral"):
        DscPostClusterer().fit_predict(sparse.eye(10, format="csr"), 2)


def test_a_run_with_a_sparse_affinity_writes_npz_and_its_report_reads_it(tmp_path):
    out = tmp_path / "run"
    done = invoke("run", "--dataset", "synthetic", "--subspaces", "3", "--per-subspace", "10", "--pretrain-epochs",
                  "1", "--epochs", "1", "--clusterer", "sparse-spectral", "--clusterer.k", "5", "--miner.k", "3",
                  "--out", str(out))
    assert done.exit_code == 0, done.output
    assert (out / "affinity.npz").is_file() and not (out / "affinity.npy").exists()
    run = RunFiles.read(out)
    assert sparse.issparse(run.affinity) and run.affinity.shape == (30, 30)
    assert (out / "figures" / "affinity.png").is_file() and invoke("report", str(out)).exit_code == 0


def test_a_large_affinity_is_pictured_from_a_sample_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "MAX_PICTURED", 20)
    titles = []
    real = figures._save

    def keep_titles(figure, path):
        titles.extend(axis.get_title() for axis in figure.axes)
        return real(figure, path)

    monkeypatch.setattr(figures, "_save", keep_titles)
    labels = np.arange(100) % 4
    figures.affinity_figure(sparse.random(100, 100, density=0.05, format="csr", random_state=0), labels, labels,
                            tmp_path / "a.png")
    assert titles and all("20 of 100 samples" in title for title in titles)


def test_the_eigensolver_benchmark_runs_through_the_clusterer_and_reports_each_solver():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "sparse_spectral.py"
    done = subprocess.run([sys.executable, str(script), "--sizes", "400", "--subspaces", "4", "--threads", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 400 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["arpack", "lobpcg"]
    assert all(float(row.split("|")[5]) > 90 for row in rows)  # four clean subspaces: near-perfect clusters
