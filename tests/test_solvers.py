"""Shallow solvers (Tables 2-3 baselines): each finds the optimum of its own problem, recovers a
union of subspaces exactly through the run pipeline, and rejects bad settings in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error, invoke
from sklearn.linear_model import ElasticNet, Lasso, orthogonal_mp

from dscsc_core import DataError, PluginError, SelfExpressionSolver
from dscsc_plugins.solvers import (
    ElasticNetSubspaceClustering,
    LeastSquaresRegression,
    LowRankRepresentation,
    LowRankSubspaceClustering,
    OrthogonalMatchingPursuit,
    SparseSubspaceClustering,
)


def union_of_subspaces(per_subspace=12, dims=(2, 2, 3), ambient=15, seed=0):
    """Samples (rows) drawn from independent random subspaces, with their labels."""
    rng = np.random.default_rng(seed)
    blocks = [rng.standard_normal((per_subspace, d)) @ rng.standard_normal((d, ambient)) for d in dims]
    return np.concatenate(blocks), np.repeat(np.arange(len(dims)), per_subspace)


def others(data, i):
    return np.delete(data, i, axis=0).T  # D x (N-1): every sample but i, one per column


def test_ssc_columns_are_lasso_solutions():
    data, _ = union_of_subspaces(seed=1)
    x = data / np.linalg.norm(data, axis=1, keepdims=True)
    coef = SparseSubspaceClustering(fit_alpha=5, iterations=20000, tol=1e-10).solve(data)
    gram = x @ x.T
    fit = 5 / np.abs(gram - np.diag(np.diag(gram))).max(axis=0).min()
    for i in (0, 17, 35):
        # ||c||_1 + fit/2 ||x_i - X c||^2  ==  D·fit · (sklearn's Lasso with alpha = 1 / (fit·D))
        lasso = Lasso(alpha=1 / (fit * x.shape[1]), fit_intercept=False, tol=1e-12, max_iter=100000)
        expected = np.insert(lasso.fit(others(x, i), x[i]).coef_, i, 0.0)
        np.testing.assert_allclose(coef[:, i], expected, atol=1e-5)


def test_ensc_columns_are_elastic_net_solutions():
    data, _ = union_of_subspaces(seed=2)
    x = data / np.linalg.norm(data, axis=1, keepdims=True)
    coef = ElasticNetSubspaceClustering(tradeoff=0.7, fit_gamma=10, iterations=20000, tol=1e-10).solve(data)
    gram = x @ x.T
    fit = 10 / np.abs(gram - np.diag(np.diag(gram))).max(axis=0).min()
    for i in (3, 20):
        net = ElasticNet(alpha=1 / (fit * x.shape[1]), l1_ratio=0.7, fit_intercept=False, tol=1e-12, max_iter=100000)
        expected = np.insert(net.fit(others(x, i), x[i]).coef_, i, 0.0)
        np.testing.assert_allclose(coef[:, i], expected, atol=1e-5)


def test_omp_columns_match_sequential_omp():
    data, _ = union_of_subspaces(seed=3)
    x = data / np.linalg.norm(data, axis=1, keepdims=True)
    coef = OrthogonalMatchingPursuit(sparsity=2).solve(data)
    for i in (0, 13, 30):
        expected = np.insert(orthogonal_mp(others(x, i), x[i], n_nonzero_coefs=2), i, 0.0)
        np.testing.assert_allclose(coef[:, i], expected, atol=1e-8)
    assert (np.count_nonzero(coef, axis=0) <= 2).all()


def test_lsr_closed_forms():
    data, _ = union_of_subspaces(seed=4)
    x = data / np.linalg.norm(data, axis=1, keepdims=True)
    gram, n = x @ x.T, len(x)
    free = LeastSquaresRegression(lam=0.3, diagonal="free").solve(data)
    np.testing.assert_allclose(free, np.linalg.solve(gram + 0.3 * np.eye(n), gram), atol=1e-10)
    zero = LeastSquaresRegression(lam=0.3).solve(data)
    assert np.all(np.diag(zero) == 0)
    for i in (0, 21):  # ridge regression of x_i on every other sample
        a = others(x, i)
        expected = np.linalg.solve(a.T @ a + 0.3 * np.eye(n - 1), a.T @ x[i])
        np.testing.assert_allclose(np.delete(zero[:, i], i), expected, atol=1e-10)


def test_low_rank_solvers_give_the_shape_interaction_matrix_on_clean_data():
    data, _ = union_of_subspaces(seed=5)
    x = data / np.linalg.norm(data, axis=1, keepdims=True)
    _, values, right = np.linalg.svd(x.T, full_matrices=False)
    rank = int((values > values[0] * 1e-10).sum())
    shape_interaction = right[:rank].T @ right[:rank]  # LRR's solution on noiseless data (Liu et al.)
    lrr = LowRankRepresentation(lam=100, iterations=2000, tol=1e-9, energy=1.0).solve(data)
    np.testing.assert_allclose(lrr, shape_interaction, atol=1e-4)
    lrsc = LowRankSubspaceClustering(tau=1e12).solve(data)
    np.testing.assert_allclose(lrsc, shape_interaction, atol=1e-6)


def _registered_solvers():
    from dscsc_core.plugin_api.registry import load_registry

    return sorted(info.name for info in load_registry() if info.kind == "solver")


@pytest.mark.parametrize("name", _registered_solvers())
def test_every_solver_recovers_a_union_of_subspaces_through_a_run(registry, name):
    from dscsc_core.run.pipeline import execute, prepare, resolve_config

    config = resolve_config(registry, {"dataset": "synthetic", "solver": name, "clusterer": "spectral"})
    result = execute(prepare(config, registry))
    assert result.metrics["acc"] == 1.0
    assert result.summary["components"]["solver"]["name"] == name
    assert result.timings.pretrain_s == 0.0 and result.history == []  # nothing was trained


def test_a_solver_run_writes_its_report_without_loss_curves(tmp_path):
    out = tmp_path / "lsr"
    result = invoke("run", "--solver", "lsr", "--dataset", "synthetic", "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "result.json").read_text())
    assert summary["components"]["solver"]["name"] == "lsr" and summary["metrics"]["acc"] == 1.0
    report = (out / "report.md").read_text()
    assert "solver `lsr`" in report and "solving" in report and "encoder" not in report
    assert (out / "figures" / "affinity.png").exists()
    assert not (out / "figures" / "losses.png").exists()


def test_solver_checks_its_input_and_its_answer():
    with pytest.raises(DataError, match="N x D"):
        LeastSquaresRegression().solve(np.ones(5))
    with pytest.raises(DataError, match="NaN or Inf"):
        LeastSquaresRegression().solve(np.array([[1.0, np.nan], [0.0, 1.0]]))

    class Broken(SelfExpressionSolver):
        name = "broken"

        def coefficients(self, data):
            return np.zeros((2, 2))

    with pytest.raises(PluginError, match="3 x 3"):
        Broken().solve(np.eye(3))


@pytest.mark.parametrize("args, fragments", [
    (("--solver", "ssc-omp", "--sparsity", "0"), ("sparsity", ">= 1")),
    (("--solver", "ssc-omp", "--sparsity", "500"), ("sparsity", "below the number of samples")),
    (("--solver", "lsr", "--diagonal", "maybe"), ("diagonal", "zero", "free")),
    (("--solver", "ensc", "--tradeoff", "1.5"), ("tradeoff", "<= 1")),
    (("--solver", "kssc", "--kernel", "linear"), ("kernel", "rbf", "polynomial")),
    (("--solver", "lrr", "--energy", "nan"), ("energy",)),
    (("--solver", "ssx",), ("unknown solver", "ssc")),
])
def test_bad_solver_settings_are_one_line(tmp_path, args, fragments):
    out = tmp_path / "run"
    result = invoke("run", "--dataset", "synthetic", *args, "--out", str(out))
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_a_solver_on_stage1_features_is_ae_plus_ssc_and_shares_stage1(registry, tmp_path):
    from dscsc_core.run.pipeline import execute, prepare, resolve_config

    tiny = {"dataset": "synthetic", "pretrain_epochs": 3, "epochs": 50, "pretrain_objective": "drh",
            "augment": "none", "solver_input": "features", "clusterer": "spectral",
            "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}}}
    first = execute(prepare(resolve_config(registry, tiny, {"solver": "ssc"}), registry), stage1_cache=tmp_path)
    assert [r.stage for r in first.history] == ["pretrain"] * 3  # Stage I only: the solver replaces Stage II
    assert first.coef.shape == (30, 30) and first.embedding.shape[0] == 30
    assert first.embedding.shape[1] != 8 * 8  # the encoder's features, not the pixels
    assert first.summary["components"]["solver"]["name"] == "ssc"
    second = execute(prepare(resolve_config(registry, tiny, {"solver": "lsr"}), registry), stage1_cache=tmp_path)
    assert second.timings.stage1.reused and second.timings.pretrain_s == 0.0
    np.testing.assert_array_equal(second.embedding, first.embedding)  # the same Stage I, paid once


@pytest.mark.parametrize("name", _registered_solvers())
def test_an_all_zero_sample_does_not_break_a_solver(registry, name):
    """Yale B's 2432 images hold 18 corrupted (blank) ones: C stays finite, the others still cluster."""
    data, labels = union_of_subspaces(seed=6)
    data[5] = 0.0
    coef = registry.create("solver", name).solve(data)
    assert np.isfinite(coef).all() and coef.shape == (len(data), len(data))
