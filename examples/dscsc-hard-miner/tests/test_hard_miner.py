"""The plugin's own tests, written with dscsc's contract kit."""

import torch
from dscsc_hard_miner import HardMiner

from dscsc_core.testing import check_miner


def test_passes_the_dscsc_miner_contract():
    check_miner(HardMiner)
    check_miner(HardMiner(k=3, m=2))


def test_takes_the_m_most_similar_beyond_the_k_nearest():
    # On a line, sample 0's neighbours by cosine similarity of (1, t) rank 1, 2, 3, 4 in that order.
    z = torch.stack([torch.ones(5), torch.tensor([0.0, 0.1, 0.3, 0.6, 1.0])], dim=1)
    mask = HardMiner(k=1, m=2)(z)
    assert mask[0].tolist() == [False, False, True, True, False]


def test_fewer_than_m_when_the_rest_is_smaller():
    mask = HardMiner(k=2, m=10)(torch.randn(5, 3))
    assert mask.sum(dim=1).tolist() == [2] * 5
