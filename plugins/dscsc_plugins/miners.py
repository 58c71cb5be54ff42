"""Negative miners for the structural contrastive head."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from dscsc_core import DataError, NegativeMiner, Param


class AllOthersMiner(NegativeMiner):
    name = "none"
    summary = "every other sample is a negative: the instance-level loss of eq. 7"

    def mine(self, z, coef):
        return torch.ones(z.shape[0], z.shape[0], dtype=torch.bool, device=z.device)


class KnnMiner(NegativeMiner):
    name = "knn"
    summary = "eq. 8: every sample except the k nearest neighbours of the anchor (cosine, encoder space)"
    params = (Param("k", int, 10, "number of nearest neighbours spared from being negatives", min=0),)
    by_coef: ClassVar[bool] = False  # spare the strongest partners in C (once it exists), not the nearest features

    def check_context(self, context):
        self._check_k(context.samples_at_once)

    def _check_k(self, n_samples: int) -> None:
        if self.k >= n_samples - 1:
            raise DataError(f"miner '{self.name}' parameter 'k' must be smaller than N-1 = {n_samples - 1}; "
                            f"got {self.k}")

    def mine(self, z, coef):
        if self.k:
            self._check_k(z.shape[0])
        return _all_but_partners(z, coef, self.k, self.by_coef)


class AffinityMiner(KnnMiner):
    name = "affinity"
    summary = ("every sample except the anchor's k strongest self-expression partners (|C| + |C|^T); "
               "before C exists (Stage I), the k nearest in the encoder space, as knn")
    params = (Param("k", int, 10, "number of strongest partners spared from being negatives", min=0),)
    # Faces that turn through the same pose are close in the encoder space whoever they are
    # (UMIST), while C ties each sample to its own subspace: C's partners spare the subspace.
    by_coef = True


class ClassmatesMiner(NegativeMiner):
    name = "classmates"
    summary = ("structural negatives: every sample except the anchor's n/K - 1 nearest (a class's expected size "
               "in a batch of n), by the encoder space or by C; K is the run's number of clusters")
    params = (
        Param("by", str, "features", "nearest by cosine in the encoder space (features) or by |C| + |C|^T (coef; "
              "before C exists, by features)", choices=("features", "coef")),
        Param("clusters", int, 0, "K, the number of classes (0: the run's number of clusters)", min=0),
    )

    def check_context(self, context):
        # With k = n/K - 1 spared, a batch of at most K samples spares none: the instance loss of eq. 7.
        if self.clusters == 0:
            self.clusters = context.n_clusters

    def mine(self, z, coef):
        if self.clusters < 1:
            raise DataError(f"miner '{self.name}' needs the number of classes: set its parameter 'clusters', or "
                            "use it in a run, which gives it the run's number of clusters")
        spared = max(round(z.shape[0] / self.clusters) - 1, 0)
        return _all_but_partners(z, coef, spared, self.by == "coef")


def _all_but_partners(z: torch.Tensor, coef: torch.Tensor | None, spared: int, by_coef: bool) -> torch.Tensor:
    """Every sample a negative of every anchor but the anchor's ``spared`` strongest partners: by |C| + |C|^T
    where ``by_coef`` and C exists, else the nearest by cosine in the encoder space; none spared: eq. 7."""
    n = z.shape[0]
    if spared == 0:
        return torch.ones(n, n, dtype=torch.bool, device=z.device)
    if by_coef and coef is not None:
        strength = coef.abs()
        return _all_but_strongest(strength + strength.T, spared)
    unit = F.normalize(z.flatten(1), dim=1)
    return _all_but_strongest(unit @ unit.T, spared)


def _all_but_strongest(similarity: torch.Tensor, k: int) -> torch.Tensor:
    """Row i: True everywhere except at the k largest off-diagonal entries of ``similarity``'s row i.

    ``similarity`` is a fresh matrix of the caller's, so its diagonal is overwritten in place rather
    than copying an N x N matrix every epoch.
    """
    n = similarity.shape[0]
    similarity.fill_diagonal_(float("-inf"))  # the anchor is not its own neighbour
    neighbours = similarity.topk(k, dim=1).indices
    return torch.ones(n, n, dtype=torch.bool, device=similarity.device).scatter_(1, neighbours, False)
