"""An external dscsc plugin: negatives chosen from the current self-expression affinity.

The built-in ``knn`` miner spares an anchor's k nearest neighbours in encoder space. This miner
spares the k samples the self-expression layer currently uses most to rebuild the anchor
(largest |C_ij| + |C_ji|), so the contrastive head stops pushing apart points that the subspace
model already groups. Before C exists (Stage I) it falls back to encoder-space neighbours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dscsc_core import NegativeMiner, Param, hookimpl

__version__ = "0.1.0"


class AffinityMiner(NegativeMiner):
    name = "affinity"
    summary = "spares the k strongest self-expression partners of each anchor (encoder kNN before C exists)"
    params = (Param("k", int, 10, "partners per anchor spared from being negatives", min=0),)

    def check_context(self, context):
        if self.k >= context.n_samples - 1:
            from dscsc_core import ParameterError

            raise ParameterError(f"miner 'affinity' needs k smaller than N-1 = {context.n_samples - 1}; got {self.k}")

    def mine(self, z: torch.Tensor, coef: torch.Tensor | None) -> torch.Tensor:
        n = z.shape[0]
        if coef is None:
            unit = F.normalize(z, dim=1)
            strength = unit @ unit.T
        else:
            strength = coef.abs() + coef.abs().T
        strength = strength.masked_fill(torch.eye(n, dtype=torch.bool, device=z.device), float("-inf"))
        negatives = torch.ones(n, n, dtype=torch.bool, device=z.device)
        if self.k:
            partners = strength.topk(self.k, dim=1).indices
            negatives.scatter_(1, partners, False)
        return negatives


@hookimpl
def dscsc_register_miners(register):
    register(AffinityMiner)
