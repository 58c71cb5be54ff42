"""The scikit-learn estimator: sklearn's own contract checks, attributes, and plugin swaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

from dscsc_core.errors import DataError, ParameterError, UnknownComponentError, UnknownParameterError
from dscsc_core.estimator import CHECKED_SETTINGS, DeepSubspaceClustering

TINY = CHECKED_SETTINGS


@pytest.fixture(autouse=True)
def one_thread():
    """These fits are of tiny arrays, where a second thread only contends (on a busy machine, tenfold)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_passes_sklearn_check_estimator_with_the_documented_settings():
    # Their cost (under a minute on 2 CPU cores) is documented, not timed here: tests assert behaviour.
    check_estimator(DeepSubspaceClustering(**CHECKED_SETTINGS))


def test_parameters_are_the_run_settings_with_their_declared_defaults():
    """A new run setting reaches the estimator: its parameters are made from RUN_SETTINGS."""
    from dscsc_core.settings import RUN_SETTINGS

    params = DeepSubspaceClustering().get_params()
    declared = {p.name: p.default for p in RUN_SETTINGS}
    shared = set(params) & set(declared)
    assert {"pretrain_objective", "coef_diagonal", "pretrain_tol", "input_scale", "miner"} <= shared
    assert all(params[name] == declared[name] for name in shared - {"n_clusters", "device"})
    assert (params["n_clusters"], params["device"], params["random_state"]) == (8, "cpu", None)
    with pytest.raises(TypeError, match="epoch"):
        DeepSubspaceClustering(epoch=3)


@pytest.fixture(scope="module")
def synthetic():
    from dscsc_core.plugin_api.registry import load_registry

    data = load_registry(strict=True).create("dataset", "synthetic", per_subspace=12, subspaces=3).load()
    return data.images.numpy()[:, 0], data.labels  # N x H x W images


def test_fit_sets_the_documented_attributes(synthetic):
    images, _ = synthetic
    model = DeepSubspaceClustering(3, random_state=1, input_scale=10.0, **TINY).fit(images)
    n = images.shape[0]
    assert model.labels_.shape == (n,) and set(model.labels_) <= {0, 1, 2}
    assert model.coef_.shape == (n, n) and np.all(np.diag(model.coef_) == 0)
    assert model.affinity_matrix_.shape == (n, n)
    assert model.embedding_.shape[0] == n
    assert model.n_features_in_ == images.shape[1] * images.shape[2]


def test_same_random_state_same_labels(synthetic):
    images, _ = synthetic
    first = DeepSubspaceClustering(3, random_state=4, **TINY).fit_predict(images)
    second = DeepSubspaceClustering(3, random_state=4, **TINY).fit_predict(images)
    assert np.array_equal(first, second)


def test_set_params_swaps_plugins_like_a_grid_search(synthetic):
    images, _ = synthetic
    base = DeepSubspaceClustering(3, random_state=2, **TINY)
    knn = clone(base).set_params(miner="knn", plugin_params={"k": 3}).fit(images)
    every_other = clone(base).set_params(miner="none", plugin_params={}).fit(images)
    # Same seed and data: only the negatives differ, and with them the learned C.
    assert not np.allclose(knn.coef_, every_other.coef_)
    assert np.allclose(knn.coef_, clone(base).fit(images).coef_)  # knn with k=3 is what base fits
    assert base.get_params()["miner"] is None and base.get_params()["plugin_params"] == {"k": 3}
    with pytest.raises(UnknownComponentError, match="unknown miner 'knnn'"):
        clone(base).set_params(miner="knnn").fit(images)


def test_bad_plugin_name_and_parameter_are_typed_errors(synthetic):
    images, _ = synthetic
    with pytest.raises(ParameterError, match="must be >= 0"):
        DeepSubspaceClustering(3, pretrain_epochs=1, epochs=1, plugin_params={"k": -1}).fit(images)
    with pytest.raises(UnknownParameterError) as unknown:
        DeepSubspaceClustering(3, pretrain_epochs=1, epochs=1, plugin_params={"zzz": 1}).fit(images)
    assert str(unknown.value).startswith("unknown plugin parameter 'zzz'") and "--" not in str(unknown.value)


@pytest.mark.parametrize("bad, error", [
    ({"plugin_params": {"k": 500}}, DataError),  # more neighbours than samples: the run's checks apply
    ({"miner": "knnn"}, UnknownComponentError),
    ({"n_clusters": 40}, ValueError),
])
def test_bad_settings_and_data_are_value_errors(synthetic, bad, error):
    images, _ = synthetic
    with pytest.raises(error) as caught:
        DeepSubspaceClustering(**{"n_clusters": 3, **TINY, **bad}).fit(images)
    assert isinstance(caught.value, ValueError)
