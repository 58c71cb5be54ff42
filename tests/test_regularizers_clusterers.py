"""Penalties R(C), DSC-Net's coefficient thresholding, the two clusterers and the ACC metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import laplacian
from sklearn.cluster import KMeans

from dscsc_core import Clusterer, Clustering, DataError, ParameterError, PluginError, SelfExpressionRegularizer
from dscsc_core.metrics import clustering_accuracy
from dscsc_core.plugin_api.interfaces import symmetric_affinity
from dscsc_plugins.clusterers import DscPostClusterer, SpectralClusterer, keep_dominant_coefficients
from dscsc_plugins.regularizers import FrobeniusRegularizer, L1Regularizer

C_SMALL = [[0.0, -2.0, 0.5], [1.0, 0.0, -0.25], [3.0, 0.0, 0.0]]


# ----------------------------------------------------------------------------- regularizers
def test_l2_penalty_value_and_scalar():
    coef = torch.tensor(C_SMALL, dtype=torch.float64)
    value = FrobeniusRegularizer()(coef)
    assert value.ndim == 0
    assert value.item() == pytest.approx(4 + 0.25 + 1 + 0.0625 + 9)
    assert FrobeniusRegularizer(weight=0.5)(coef).item() == pytest.approx(0.5 * 14.3125)
    assert FrobeniusRegularizer(weight=0)(coef).item() == 0


def test_l1_penalty_value_and_scalar():
    coef = torch.tensor(C_SMALL, dtype=torch.float64)
    value = L1Regularizer()(coef)
    assert value.ndim == 0
    assert value.item() == pytest.approx(2 + 0.5 + 1 + 0.25 + 3)
    assert L1Regularizer(weight=2)(coef).item() == pytest.approx(13.5)


def test_penalty_gradients():
    coef = torch.tensor(C_SMALL, dtype=torch.float64, requires_grad=True)
    FrobeniusRegularizer(weight=3)(coef).backward()
    np.testing.assert_allclose(coef.grad.numpy(), 6 * np.array(C_SMALL))
    coef.grad = None
    L1Regularizer()(coef).backward()
    np.testing.assert_allclose(coef.grad.numpy(), np.sign(np.array(C_SMALL)))


def test_negative_weight_rejected():
    with pytest.raises(ParameterError):
        FrobeniusRegularizer(weight=-1)
    with pytest.raises(ParameterError):
        L1Regularizer(weight="heavy")


def test_regularizer_returning_non_scalar_is_a_plugin_error():
    class RowNorms(SelfExpressionRegularizer):
        name = "row-norms"

        def penalty(self, coef):
            return coef.pow(2).sum(dim=1)

    with pytest.raises(PluginError):
        RowNorms()(torch.ones(3, 3))


# ----------------------------------------------------------------------------- thresholding
def thr_reference(coef: np.ndarray, ratio: float) -> np.ndarray:
    """DSC-Net's thrC written as an explicit per-column loop."""
    n_rows, n_cols = coef.shape
    if ratio >= 1:
        return coef.copy()
    out = np.zeros_like(coef)
    for i in range(n_cols):
        column = [(abs(coef[r, i]), r) for r in range(n_rows)]
        column.sort(key=lambda item: -item[0])  # largest |C| first (no ties in random data)
        l1 = 0.0
        for magnitude, _ in column:
            l1 += magnitude
        running = 0.0
        for magnitude, r in column:
            running += magnitude
            out[r, i] = coef[r, i]
            if running > ratio * l1:
                break
    return out


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.99, 1.0])
def test_keep_dominant_coefficients_matches_per_column_loop(ratio):
    rng = np.random.default_rng(7)
    coef = rng.normal(size=(12, 12))
    np.fill_diagonal(coef, 0.0)
    got = keep_dominant_coefficients(coef, ratio)
    expected = thr_reference(coef, ratio)
    np.testing.assert_array_equal(got, expected)
    assert got is not coef
    # Signs are kept and nothing new appears.
    kept = got != 0
    np.testing.assert_array_equal(got[kept], coef[kept])
    if ratio < 1:
        # Each column keeps the smallest top-|C| prefix whose mass exceeds ratio * L1.
        for i in range(12):
            mass = np.abs(got[:, i]).sum()
            assert mass > ratio * np.abs(coef[:, i]).sum()
            smallest = np.abs(got[kept[:, i], i]).min()
            assert mass - smallest <= ratio * np.abs(coef[:, i]).sum()


def test_keep_dominant_coefficients_hand_case():
    # Column 0: |C| = 4, 3, 2, 1 (L1 = 10). ratio 0.5: 4 (not > 5), 4+3 = 7 > 5 -> keep 4 and 3.
    coef = np.array([[4.0], [-3.0], [2.0], [1.0]])
    np.testing.assert_array_equal(keep_dominant_coefficients(coef, 0.5), [[4.0], [-3.0], [0.0], [0.0]])
    # ratio 0.39: 4 > 3.9 -> keep only the largest.
    np.testing.assert_array_equal(keep_dominant_coefficients(coef, 0.39), [[4.0], [0.0], [0.0], [0.0]])
    # ratio 0.9: 4+3+2 = 9 is not > 9 -> the last one is needed too.
    np.testing.assert_array_equal(keep_dominant_coefficients(coef, 0.9), coef)


# ----------------------------------------------------------------------------- clusterers
SIZES = (10, 12, 8)


def block_coefficients(seed: int = 0, noise: float = 0.01, signed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """3 blocks of C (sizes SIZES) with entries 0.3..1 (random signs if ``signed``) plus N(0, noise²)."""
    rng = np.random.default_rng(seed)
    n = sum(SIZES)
    truth = np.repeat(np.arange(len(SIZES)), SIZES)
    coef = noise * rng.normal(size=(n, n))
    same = truth[:, None] == truth[None, :]
    signs = rng.choice([-1.0, 1.0], size=same.sum()) if signed else 1.0
    coef[same] += rng.uniform(0.3, 1.0, size=same.sum()) * signs
    np.fill_diagonal(coef, 0.0)
    # Shuffle the samples so that block structure is not simply the index order.
    perm = rng.permutation(n)
    return coef[np.ix_(perm, perm)], truth[perm]


CLUSTERERS = [
    lambda: SpectralClusterer(),
    lambda: SpectralClusterer(assign_labels="kmeans"),
    lambda: DscPostClusterer(),
    lambda: DscPostClusterer(ratio=1.0, dim=2, power=1.0),
]


@pytest.mark.parametrize("make", CLUSTERERS, ids=["spectral", "spectral-kmeans", "dsc-post", "dsc-post-dense"])
@pytest.mark.parametrize("seed", [0, 1])
def test_clusterers_recover_noisy_blocks_deterministically(make, seed):
    coef, truth = block_coefficients(seed)
    clusterer = make()
    first = clusterer.fit_predict(coef, 3, seed=0)
    assert first.labels.shape == (coef.shape[0],)
    assert first.labels.dtype == np.int64
    assert set(first.labels.tolist()) == {0, 1, 2}
    assert clustering_accuracy(truth, first.labels) == 1.0
    assert first.affinity.shape == coef.shape
    np.testing.assert_allclose(first.affinity, first.affinity.T)
    assert (first.affinity >= 0).all()
    again = make().fit_predict(coef, 3, seed=0)
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_array_equal(first.affinity, again.affinity)


@pytest.mark.parametrize("assign", ["discretize", "kmeans", "cluster_qr"])
def test_spectral_uses_magnitudes_so_signed_blocks_are_recovered(assign):
    coef, truth = block_coefficients(3, signed=True)
    labels = SpectralClusterer(assign_labels=assign).fit_predict(coef, 3, seed=4).labels
    assert clustering_accuracy(truth, labels) == 1.0


def test_spectral_affinity_is_the_paper_formula():
    coef, _ = block_coefficients(1)
    result = SpectralClusterer().fit_predict(coef, 3)
    n = coef.shape[0]
    for i in range(0, n, 7):
        for j in range(0, n, 5):
            assert result.affinity[i, j] == pytest.approx(0.5 * (abs(coef[i, j]) + abs(coef[j, i])))
    np.testing.assert_array_equal(symmetric_affinity(coef), result.affinity)


def test_dsc_post_affinity_normalised_to_unit_peak():
    coef, _ = block_coefficients(2)
    affinity = DscPostClusterer().fit_predict(coef, 3).affinity
    assert affinity.max() == pytest.approx(1.0)
    assert affinity.min() >= 0


@pytest.mark.parametrize("make", [SpectralClusterer, DscPostClusterer])
def test_fit_predict_rejects_bad_inputs(make):
    coef, _ = block_coefficients()
    clusterer = make()
    with pytest.raises(DataError):
        clusterer.fit_predict(coef[:, :-1], 3)
    with pytest.raises(DataError):
        clusterer.fit_predict(coef[0], 3)
    nan = coef.copy()
    nan[3, 4] = np.nan
    with pytest.raises(DataError):
        clusterer.fit_predict(nan, 3)
    inf = coef.copy()
    inf[0, 1] = np.inf
    with pytest.raises(DataError):
        clusterer.fit_predict(inf, 3)
    with pytest.raises(DataError):
        clusterer.fit_predict(coef, coef.shape[0] + 1)
    with pytest.raises(DataError):
        clusterer.fit_predict(coef, 0)


def test_clusterer_returning_wrong_label_count_is_a_plugin_error():
    class Short(Clusterer):
        name = "short"

        def cluster(self, coef, n_clusters, seed):
            return Clustering(np.zeros(coef.shape[0] - 1), coef)

    with pytest.raises(PluginError):
        Short().fit_predict(np.eye(4), 2)


def test_dsc_post_params_validated():
    with pytest.raises(ParameterError):
        DscPostClusterer(ratio=1.5)
    with pytest.raises(ParameterError):
        DscPostClusterer(dim=0)
    with pytest.raises(ParameterError):
        SpectralClusterer(assign_labels="agglomerative")


# ----------------------------------------------------------------------------- ACC
def test_clustering_accuracy_permuted_labels_is_one():
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([5, 5, 3, 3, 9, 9, 9])
    assert clustering_accuracy(truth, predicted) == 1.0


def test_clustering_accuracy_hand_case_fraction():
    # Confusion (pred x truth): pred a -> truth 0,0,0,1 ; pred b -> truth 1,1,2 ; pred c -> truth 2,0.
    # Best one-to-one matching: a->0 (3), b->1 (2), c->2 (1) = 6 of 9.
    truth = np.array([0, 0, 0, 1, 1, 1, 2, 2, 0])
    predicted = np.array(["a", "a", "a", "a", "b", "b", "b", "c", "c"])
    assert clustering_accuracy(truth, predicted) == pytest.approx(6 / 9)


def test_clustering_accuracy_more_predicted_clusters_than_true():
    # Only one predicted cluster can map to each true one: best is 2 (x->0) + 2 (y->1) = 4 of 6.
    truth = np.array([0, 0, 0, 1, 1, 1])
    predicted = np.array([0, 0, 2, 1, 1, 3])
    assert clustering_accuracy(truth, predicted) == pytest.approx(4 / 6)


def test_dsc_post_thresholds_rows_as_dscnet_or_columns_as_ssc():
    # DSC-Net's code stores C transposed and thresholds its columns: per row of C in the paper's convention.
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(12, 12))
    rows = DscPostClusterer(ratio=0.3, dim=1, threshold_along="rows")
    columns = DscPostClusterer(ratio=0.3, dim=1, threshold_along="columns")
    np.testing.assert_array_equal(rows.fit_predict(coef, 3, 0).affinity, columns.fit_predict(coef.T, 3, 0).affinity)
    assert not np.allclose(rows.fit_predict(coef, 3, 0).affinity, columns.fit_predict(coef, 3, 0).affinity)
    assert DscPostClusterer().threshold_along == "rows"
    with pytest.raises(ParameterError, match="threshold_along"):
        DscPostClusterer(threshold_along="diagonal")


def test_spectral_labels_survive_a_nearly_isolated_sample():
    """A sample tied to the rest by 1e-137 sends ARPACK's shift-invert into hours; the dense path
    answers at once and still finds the blocks."""
    from dscsc_plugins.clusterers import spectral_labels

    blocks = np.kron(np.eye(3), np.ones((10, 10)))
    affinity = np.pad(blocks, ((0, 1), (0, 1)), constant_values=1e-137)
    affinity[-1, -1] = 0.0
    labels = spectral_labels(affinity, 3, seed=0, assign_labels="discretize")
    assert labels.shape == (31,)
    assert clustering_accuracy(np.repeat(np.arange(3), 10), labels[:30]) == 1.0
    for assign in ("kmeans", "cluster_qr"):
        assert clustering_accuracy(np.repeat(np.arange(3), 10), spectral_labels(affinity, 3, 0, assign)[:30]) == 1.0


def test_spectral_with_normalize_rows_is_ng_jordan_weiss():
    """Rows of the normalised-Laplacian eigenvectors scaled to unit length, then k-means: on a sparse
    four-block graph (where scikit-learn's unscaled embedding gives another partition) the clusterer's
    labels are the partition of that recipe computed by hand."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 15)
    same = truth[:, None] == truth[None, :]
    affinity = np.where(same & (rng.random((60, 60)) < 0.15), rng.uniform(0.01, 1.0, (60, 60)), 0.0)
    affinity += np.where(~same & (rng.random((60, 60)) < 0.02), 0.05, 0.0)
    affinity = (affinity + affinity.T) / 2 + 1e-6
    _, vectors = np.linalg.eigh(laplacian(affinity, normed=True))
    rows = vectors[:, :4] / np.linalg.norm(vectors[:, :4], axis=1, keepdims=True)
    by_hand = KMeans(4, random_state=0, n_init=10).fit_predict(rows)
    normalised = SpectralClusterer(normalize_rows=True, assign_labels="kmeans").fit_predict(affinity, 4, 0).labels
    unscaled = SpectralClusterer(assign_labels="kmeans").fit_predict(affinity, 4, 0).labels
    assert clustering_accuracy(by_hand, normalised) == 1.0
    assert clustering_accuracy(by_hand, unscaled) < 1.0
    assert SpectralClusterer().normalize_rows is False
    with pytest.raises(ParameterError, match="normalize_rows"):
        SpectralClusterer(normalize_rows="sometimes")
