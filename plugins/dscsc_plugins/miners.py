"""Negative miners for the structural contrastive head."""

from __future__ import annotations

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

    def check_context(self, context):
        self._check_k(context.n_samples)

    def _check_k(self, n_samples: int) -> None:
        if self.k >= n_samples - 1:
            raise DataError(f"miner 'knn' parameter 'k' must be smaller than N-1 = {n_samples - 1}; got {self.k}")

    def mine(self, z, coef):
        n = z.shape[0]
        negatives = torch.ones(n, n, dtype=torch.bool, device=z.device)
        if self.k == 0:
            return negatives
        self._check_k(n)
        unit = F.normalize(z.flatten(1), dim=1)
        similarity = unit @ unit.T
        similarity.fill_diagonal_(float("-inf"))  # the anchor is not its own neighbour
        neighbours = similarity.topk(self.k, dim=1).indices
        return negatives.scatter_(1, neighbours, False)
