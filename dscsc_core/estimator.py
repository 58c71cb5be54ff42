"""scikit-learn estimator: DSCSC as ``DeepSubspaceClustering(...).fit_predict(X)``.

Plugins are chosen by name, exactly as on the command line, so ``GridSearchCV``-style sweeps can
swap them with ``set_params(miner="none")``. ``X`` is images (N x H x W or N x C x H x W) or a
2-D array whose rows are flattened images (give ``image_shape``; square rows are reshaped
automatically, other rows are treated as 1 x 1 x d "images").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import validate_data

from .config import RunConfig
from .runner import build_components, resolve_device
from .trainer import Trainer


class DeepSubspaceClustering(ClusterMixin, BaseEstimator):
    """Deep structural contrastive subspace clustering with pluggable components.

    Attributes after ``fit``: ``labels_``, ``coef_`` (N x N self-expression C),
    ``affinity_matrix_`` (what the clusterer used), ``embedding_`` (encoder features, N x d),
    ``n_features_in_``.
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        encoder: str = "conv1",
        augment: str = "geometric",
        miner: str = "knn",
        regularizer: str = "l2",
        clusterer: str = "dsc-post",
        plugin_params: dict[str, Any] | None = None,
        image_shape: tuple[int, ...] | None = None,
        pretrain_epochs: int = 150,
        epochs: int = 150,
        lr: float = 1e-3,
        alpha: float | None = None,
        beta: float = 10.0,
        gamma: float = 1.0,
        temperature: float = 0.1,
        head_dim: int = 64,
        input_scale: float = 1.0,
        random_state: int | None = None,
        device: str = "cpu",
    ):
        self.n_clusters = n_clusters
        self.encoder = encoder
        self.augment = augment
        self.miner = miner
        self.regularizer = regularizer
        self.clusterer = clusterer
        self.plugin_params = plugin_params
        self.image_shape = image_shape
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.lr = lr
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.temperature = temperature
        self.head_dim = head_dim
        self.input_scale = input_scale
        self.random_state = random_state
        self.device = device

    def _run_config(self) -> RunConfig:
        settings = {name: getattr(self, name) for name in (
            "encoder", "augment", "miner", "regularizer", "clusterer", "pretrain_epochs", "epochs", "lr", "alpha",
            "beta", "gamma", "temperature", "head_dim", "input_scale", "device")}
        settings["seed"] = 0 if self.random_state is None else self.random_state
        return RunConfig.from_layers(settings, {"params": dict(self.plugin_params or {})})

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
        from .registry import load_registry

        shape = self.image_shape
        if getattr(X, "ndim", 2) in (3, 4):  # images as they are: remember their shape, flatten for validation
            X = np.asarray(X)
            shape = shape if shape is not None else X.shape[1:]
            X = X.reshape(X.shape[0], -1)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        config = self._run_config()
        # sklearn's contract allows any 1 <= n_clusters <= n_samples (one cluster is a valid, trivial answer).
        n_clusters = int(self.n_clusters)
        if not 1 <= n_clusters <= X.shape[0]:
            raise ValueError(f"n_clusters={self.n_clusters} must be between 1 and the {X.shape[0]} samples")
        registry = load_registry()
        _, parts = build_components(config, registry)
        images = self._images(X, shape)
        trainer = Trainer(config.training(), parts["encoder"], parts["augment"], parts["miner"],
                          parts["regularizer"], device=resolve_device(config.device))
        trained = trainer.fit(images, n_clusters)
        clustering = parts["clusterer"].fit_predict(trained.coef, n_clusters, seed=config.seed)
        self.coef_ = trained.coef
        self.embedding_ = trained.embedding
        self.affinity_matrix_ = clustering.affinity
        self.labels_ = clustering.labels
        return self

    def fit_predict(self, X, y=None, **kwargs):
        return self.fit(X).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
