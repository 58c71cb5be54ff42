"""An external dscsc plugin: only the hardest negatives.

The built-in ``knn`` miner makes every sample a negative except an anchor's k nearest neighbours in
encoder space. This miner keeps the k nearest out too, and of the rest takes only the m most
similar: the negatives the contrastive head has the most to learn from, instead of the many that
are already far apart. It reads the encoder features only, so it works in both stages.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dscsc_core import NegativeMiner, Param, hookimpl

__version__ = "0.1.0"


class HardMiner(NegativeMiner):
    name = "hard"
    summary = "the m most similar samples beyond each anchor's k nearest neighbours (hard negatives)"
    params = (Param("k", int, 10, "nearest neighbours spared from being negatives", min=0),
              Param("m", int, 32, "hard negatives per anchor (fewer when N - 1 - k is smaller)", min=1))

    def mine(self, z: torch.Tensor, coef: torch.Tensor | None) -> torch.Tensor:
        n = z.shape[0]
        unit = F.normalize(z, dim=1)
        # The anchor's own similarity is pushed last, so ranks k .. k+m-1 never include it.
        similarity = (unit @ unit.T).fill_diagonal_(float("-inf"))
        hardest = similarity.argsort(dim=1, descending=True)[:, self.k : self.k + self.m]
        return torch.zeros(n, n, dtype=torch.bool, device=z.device).scatter_(1, hardest, True)


@hookimpl
def dscsc_register_miners(register):
    register(HardMiner)
