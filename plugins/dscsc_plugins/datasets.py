"""Embedded datasets: scikit-learn's bundled digits and a synthetic union of subspaces."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dscsc_core import Dataset, DatasetSource, Param


class DigitsSource(DatasetSource):
    name = "digits"
    summary = "scikit-learn's bundled digits: 1797 images of 8x8, 10 classes, scaled to [0, 1]"

    def read(self) -> Dataset:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
        return Dataset(self.name, images, digits.target, 10)


def _smooth_bases(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Non-negative smooth images (count x size*size): coarse noise upsampled, so a conv net can see them."""
    coarse = torch.from_numpy(np.abs(rng.standard_normal((count, 1, 4, 4))).astype(np.float32))
    fine = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp_min(0)
    return fine.flatten(1).numpy()


class SyntheticSubspacesSource(DatasetSource):
    name = "synthetic"
    summary = "union of low-dimensional linear subspaces rendered as small non-negative images (seeded)"
    # Pixel magnitude sets the weight of the summed self-expression residual against ||C||^2
    # (as 0..255 inputs do in DSC-Net); 10 makes alpha = 10^(K/10-3) effective for K = 5.
    suggested_settings = {"input_scale": 10.0, "pretrain_epochs": 50, "epochs": 100}
    params = (
        Param("subspaces", int, 5, "number of subspaces (clusters)", min=1),
        Param("per_subspace", int, 40, "images per subspace", min=1),
        Param("subspace_dim", int, 3, "dimension of each subspace", min=1),
        Param("size", int, 16, "image side in pixels", min=4),
        Param("noise", float, 0.01, "std of additive Gaussian pixel noise", min=0),
        Param("data_seed", int, 0, "seed of the generator (independent of the run seed)", min=0),
    )

    def read(self) -> Dataset:
        rng = np.random.default_rng(self.data_seed)
        bases = _smooth_bases(rng, self.subspaces * self.subspace_dim, self.size)
        bases = bases.reshape(self.subspaces, self.subspace_dim, -1)
        weights = rng.uniform(0.0, 1.0, (self.subspaces, self.per_subspace, self.subspace_dim))
        points = np.einsum("kpd,kdx->kpx", weights, bases).reshape(-1, self.size * self.size)
        points = points / points.max() + self.noise * rng.standard_normal(points.shape)
        images = torch.from_numpy(np.clip(points, 0.0, None).astype(np.float32)).view(-1, 1, self.size, self.size)
        labels = np.repeat(np.arange(self.subspaces), self.per_subspace)
        return Dataset(self.name, images, labels, self.subspaces)
