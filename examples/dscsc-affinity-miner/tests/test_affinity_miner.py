"""The plugin's own tests, written with dscsc's contract kit."""

import torch
from dscsc_affinity_miner import AffinityMiner

from dscsc_core.testing import check_miner


def test_passes_the_dscsc_miner_contract():
    check_miner(AffinityMiner)
    check_miner(AffinityMiner(k=3))


def test_spares_the_strongest_partners_of_each_anchor():
    coef = torch.zeros(4, 4)
    coef[0, 1] = 0.9  # 0 and 1 rebuild each other
    coef[2, 3] = 0.8
    mask = AffinityMiner(k=1)(torch.randn(4, 3), coef)
    assert not mask[0, 1] and not mask[1, 0]
    assert not mask[2, 3] and not mask[3, 2]
    assert mask[0, 2] and mask[0, 3]


def test_k_zero_makes_every_other_sample_a_negative():
    mask = AffinityMiner(k=0)(torch.randn(5, 3), None)
    assert mask.sum() == 5 * 4
