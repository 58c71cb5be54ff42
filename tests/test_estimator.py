"""The scikit-learn estimator: sklearn's own contract checks, attributes, and plugin swaps."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

from dscsc_core.errors import ParameterError
from dscsc_core.estimator import DeepSubspaceClustering

TINY = {"pretrain_epochs": 2, "epochs": 2, "plugin_params": {"k": 3}}


def test_passes_sklearn_check_estimator():
    check_estimator(DeepSubspaceClustering(**TINY))


@pytest.fixture(scope="module")
def synthetic():
    from dscsc_core.registry import load_registry

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
    base = DeepSubspaceClustering(3, **TINY)
    for miner, params in (("knn", {"k": 3}), ("none", {})):
        model = clone(base).set_params(miner=miner, plugin_params=params).fit(images)
        assert model.labels_.shape == (images.shape[0],)
    assert base.get_params()["miner"] == "knn"


def test_bad_plugin_name_and_parameter_are_typed_errors(synthetic):
    images, _ = synthetic
    from dscsc_core.errors import UnknownComponentError

    with pytest.raises(UnknownComponentError, match="unknown miner 'knnn'"):
        DeepSubspaceClustering(3, miner="knnn", **{k: v for k, v in TINY.items() if k != "plugin_params"}).fit(images)
    with pytest.raises(ParameterError, match="must be >= 0"):
        DeepSubspaceClustering(3, pretrain_epochs=1, epochs=1, plugin_params={"k": -1}).fit(images)
