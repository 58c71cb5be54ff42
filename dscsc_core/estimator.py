"""scikit-learn estimator: DSCSC as ``DeepSubspaceClustering(...).fit_predict(X)``.

Plugins are chosen by name, exactly as on the command line, so ``GridSearchCV``-style sweeps can
swap them with ``set_params(miner="none")``. ``X`` is images (N x H x W or N x C x H x W) or a
2-D array whose rows are flattened images (give ``image_shape``; square rows are reshaped
automatically, other rows are treated as 1 x 1 x d "images").

The constructor's parameters are the run settings (``dscsc_core.run.config.RUN_SETTINGS``) that make
sense for an in-memory fit, with their declared defaults, plus scikit-learn's own (``n_clusters``,
``random_state``) and ``plugin_params``/``image_shape``: a new run setting reaches the estimator
without an edit here. A fit goes through the same ``prepare``/``execute`` pipeline as ``dscsc run``,
over an in-memory dataset source.

``check_estimator`` passes in under a minute with ``pretrain_epochs=2, epochs=2,
plugin_params={"k": 3}`` (``CHECKED_SETTINGS``: about 20 s on one CPU thread, the fastest for its
tiny arrays; tests/test_estimator.py holds it to the minute).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import validate_data

from dscsc_core.plugin_api.interfaces import Dataset, DatasetSource
from dscsc_core.run.config import RunConfig
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.settings import RUN_SETTINGS

# Run settings an estimator does not take: X is the data, nothing is written, and scikit-learn
# names the cluster count, the seed and (its default being the CPU) the device its own way.
ESTIMATOR_SETTINGS = tuple(setting for setting in RUN_SETTINGS if setting.role.estimator)
CHECKED_SETTINGS: dict[str, Any] = {"pretrain_epochs": 2, "epochs": 2, "plugin_params": {"k": 3}}

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_SIGNATURE = inspect.Signature([
    inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("n_clusters", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=8, annotation=int),
    *(inspect.Parameter(p.name, _KEYWORD, default=p.default, annotation=p.type | None if isinstance(p.type, type)
                        else Any) for p in ESTIMATOR_SETTINGS),
    inspect.Parameter("plugin_params", _KEYWORD, default=None, annotation="dict[str, Any] | None"),
    inspect.Parameter("image_shape", _KEYWORD, default=None, annotation="tuple[int, ...] | None"),
    inspect.Parameter("random_state", _KEYWORD, default=None, annotation="int | None"),
    inspect.Parameter("device", _KEYWORD, default="cpu", annotation=str),
])


def _parameter_docs() -> str:
    lines = ["", "Parameters", "----------",
             "n_clusters : int, default=8", "    Number of clusters K."]
    for p in ESTIMATOR_SETTINGS:
        default = "the registered default" if p.default is None and p.type is str else repr(p.default)
        lines += [f"{p.name} : {p.type_name}, default={default}", f"    {p.help}."]
    lines += ["plugin_params : dict, default=None",
              "    Plugin parameters, plain (``k``) or by kind (``miner.k``), as on the command line.",
              "image_shape : tuple, default=None", "    (C,) H, W of the images when X holds flattened rows.",
              "random_state : int, default=None", "    Seed of every random choice (None: 0).",
              "device : str, default='cpu'", "    auto, cpu, cuda or cuda:N."]
    return "\n    ".join(lines)


class ArraySource(DatasetSource):
    """The estimator's X as a dataset source: images without labels, and the K asked for."""

    name = "array"
    summary = "images given in memory"

    def __init__(self, images: torch.Tensor, n_clusters: int):
        super().__init__()
        self.images, self.n_clusters = images, n_clusters

    def read(self) -> Dataset:
        return Dataset(self.name, self.images, None, self.n_clusters)


class DeepSubspaceClustering(ClusterMixin, BaseEstimator):
    def __init__(self, *args: Any, **kwargs: Any):
        bound = _SIGNATURE.bind(self, *args, **kwargs)  # a TypeError names any unknown keyword
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = _SIGNATURE

    def _run_config(self, registry) -> RunConfig:
        settings = {p.name: getattr(self, p.name) for p in ESTIMATOR_SETTINGS}
        settings.update(seed=0 if self.random_state is None else self.random_state, device=self.device)
        return resolve_config(registry, settings, {"params": dict(self.plugin_params or {})})

    @staticmethod
    def _images(X: np.ndarray, shape: tuple[int, ...] | None) -> torch.Tensor:
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            shape = (1, *shape) if len(shape) == 2 else shape
            if int(np.prod(shape)) != X.shape[1]:
                raise ValueError(f"image_shape {shape} does not hold {X.shape[1]} features")
        else:
            side = int(round(np.sqrt(X.shape[1])))
            shape = (1, side, side) if side * side == X.shape[1] and side > 1 else (1, 1, X.shape[1])
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).view(-1, *shape)

    def fit(self, X, y=None):
        """Train on X (y is ignored: labels are never used) and cluster it."""
        from dscsc_core.plugin_api.registry import load_registry

        shape = self.image_shape
        if getattr(X, "ndim", 2) in (3, 4):  # images as they are: remember their shape, flatten for validation
            X = np.asarray(X)
            shape = shape if shape is not None else X.shape[1:]
            X = X.reshape(X.shape[0], -1)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        # sklearn's contract allows any 1 <= n_clusters <= n_samples (one cluster is a valid, trivial answer).
        n_clusters = int(self.n_clusters)
        if not 1 <= n_clusters <= X.shape[0]:
            raise ValueError(f"n_clusters={self.n_clusters} must be between 1 and the {X.shape[0]} samples")
        registry = load_registry()
        source = ArraySource(self._images(X, shape), n_clusters)
        result = execute(prepare(self._run_config(registry), registry, source=source))
        self.coef_ = result.coef
        self.embedding_ = result.embedding
        self.affinity_matrix_ = result.affinity
        self.labels_ = result.labels
        return self

    def fit_predict(self, X, y=None, **kwargs):
        return self.fit(X).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


DeepSubspaceClustering.__doc__ = f"""Deep structural contrastive subspace clustering with pluggable components.

    Attributes after ``fit``: ``labels_``, ``coef_`` (N x N self-expression C),
    ``affinity_matrix_`` (what the clusterer used), ``embedding_`` (encoder features, N x d),
    ``n_features_in_``.
    {_parameter_docs()}
    """
