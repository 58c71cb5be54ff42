"""Negative miners: mask contract of the base class, kNN exclusions against brute force."""

from __future__ import annotations

import math

import pytest
import torch

from dscsc_core import DataError, NegativeMiner, ParameterError, PluginError, RunContext
from dscsc_plugins.miners import AffinityMiner, AllOthersMiner, KnnMiner

N, D = 12, 5


def features(seed: int = 0, n: int = N, d: int = D) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def brute_force_neighbours(z: torch.Tensor, k: int) -> list[set[int]]:
    """The k most cosine-similar other rows of each row, by explicit loops."""
    rows = z.tolist()

    def cos(u, v):
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    return brute_force_top_k(len(rows), lambda i, j: cos(rows[i], rows[j]), k)


def brute_force_top_k(n: int, score, k: int) -> list[set[int]]:
    """For each i, the k other indices j with the largest score(i, j), by explicit loops."""
    return [set(sorted((j for j in range(n) if j != i), key=lambda j: -score(i, j))[:k]) for i in range(n)]


def check_mask_contract(mask: torch.Tensor, n: int) -> None:
    assert isinstance(mask, torch.Tensor)
    assert mask.dtype == torch.bool
    assert tuple(mask.shape) == (n, n)
    assert not mask.diagonal().any()
    assert not mask.requires_grad


# ----------------------------------------------------------------------------- kNN
@pytest.mark.parametrize("k", [0, 1, 5])
def test_knn_mask_shape_dtype_diagonal_and_row_counts(k):
    mask = KnnMiner(k=k)(features())
    check_mask_contract(mask, N)
    assert mask.sum(dim=1).tolist() == [N - 1 - k] * N


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_excludes_exactly_the_k_most_cosine_similar_others(k, seed):
    z = features(seed)
    mask = KnnMiner(k=k)(z)
    expected = brute_force_neighbours(z, k)
    for i in range(N):
        spared = {j for j in range(N) if j != i and not mask[i, j]}
        assert spared == expected[i], f"row {i}"


def test_knn_uses_cosine_not_euclidean_distance():
    # Row 1 is nearest to row 0 in Euclidean distance, row 2 in direction (cosine).
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [10.0, 0.5], [-1.0, 0.2]])
    mask = KnnMiner(k=1)(z)
    assert not mask[0, 2] and mask[0, 1] and mask[0, 3]


def test_knn_zero_equals_all_others_miner():
    z = features(3)
    knn0 = KnnMiner(k=0)(z)
    none = AllOthersMiner()(z)
    assert torch.equal(knn0, none)
    assert torch.equal(none, ~torch.eye(N, dtype=torch.bool))


def test_knn_invariant_to_positive_row_scaling():
    z = features(4)
    scale = torch.linspace(0.01, 100.0, N, dtype=torch.float64).unsqueeze(1)
    assert torch.equal(KnnMiner(k=3)(z), KnnMiner(k=3)(z * scale))


def test_knn_accepts_coef_argument_and_validates_its_shape():
    z = features(5)
    coef = torch.randn(N, N, dtype=torch.float64)
    with_coef = KnnMiner(k=2)(z, coef)
    check_mask_contract(with_coef, N)
    assert torch.equal(with_coef, KnnMiner(k=2)(z))
    with pytest.raises(DataError):
        KnnMiner(k=2)(z, torch.randn(N, N + 1))


def test_mask_has_no_grad_and_input_gradients_untouched():
    z = features(6).requires_grad_(True)
    coef = torch.randn(N, N, dtype=torch.float64, requires_grad=True)
    for miner in (KnnMiner(k=2), AllOthersMiner()):
        mask = miner(z, coef)
        assert not mask.requires_grad and mask.grad_fn is None
    assert z.grad is None and coef.grad is None
    # The mask can be used in a loss without any gradient flowing into the miner's inputs via it.
    (z.sum() * KnnMiner(k=2)(z).double().sum()).backward()
    assert torch.equal(z.grad, torch.full_like(z, float(N * (N - 3))))


def test_knn_mine_rejects_k_too_large_for_batch():
    with pytest.raises(DataError):
        KnnMiner(k=N - 1)(features())
    KnnMiner(k=N - 2)(features())  # the largest k allowed: one negative per row


def test_knn_negative_k_rejected_by_params():
    with pytest.raises(ParameterError):
        KnnMiner(k=-1)
    with pytest.raises(ParameterError):
        KnnMiner(k=1.5)
    with pytest.raises(ParameterError):
        KnnMiner(kk=1)


@pytest.mark.parametrize("k,n,ok", [(5, 7, True), (6, 7, False), (7, 7, False), (0, 2, True), (1, 2, False)])
def test_knn_check_context(k, n, ok):
    context = RunContext(n_samples=n, n_clusters=2, input_shape=(1, 8, 8))
    if ok:
        KnnMiner(k=k).check_context(context)
    else:
        with pytest.raises(DataError):
            KnnMiner(k=k).check_context(context)


def brute_force_partners(coef: torch.Tensor, k: int) -> list[set[int]]:
    """The k other samples with the largest |C_ij| + |C_ji| for each i, by explicit loops."""
    rows = coef.tolist()
    return brute_force_top_k(len(rows), lambda i, j: abs(rows[i][j]) + abs(rows[j][i]), k)


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_affinity_spares_exactly_the_k_strongest_self_expression_partners(k, seed):
    g = torch.Generator().manual_seed(seed)
    coef = torch.randn(N, N, generator=g, dtype=torch.float64)
    mask = AffinityMiner(k=k)(features(seed), coef)
    check_mask_contract(mask, N)
    spared = [set(torch.nonzero(~row).flatten().tolist()) - {i} for i, row in enumerate(mask)]
    assert spared == brute_force_partners(coef, k)


def test_affinity_reads_c_not_the_features():
    g = torch.Generator().manual_seed(3)
    coef = torch.randn(N, N, generator=g, dtype=torch.float64)
    assert torch.equal(AffinityMiner(k=3)(features(0), coef), AffinityMiner(k=3)(features(1), coef))
    # A strong tie in either direction (C_ji or C_ij) spares the partner.
    coef = torch.zeros(N, N, dtype=torch.float64)
    coef[4, 0] = -5.0  # sample 4 expresses sample 0, with a negative sign
    coef[0, 7] = 2.0  # sample 0 expresses sample 7
    mask = AffinityMiner(k=2)(features(0), coef)
    assert not mask[0, 4] and not mask[0, 7] and not mask[4, 0] and not mask[7, 0]


def test_affinity_without_c_is_knn_in_the_encoder_space():
    z = features(4)
    assert torch.equal(AffinityMiner(k=3)(z), KnnMiner(k=3)(z))
    assert torch.equal(AffinityMiner(k=0)(z, torch.randn(N, N, dtype=torch.float64)), AllOthersMiner()(z))


def test_affinity_rejects_k_too_large_for_batch():
    with pytest.raises(DataError):
        AffinityMiner(k=N - 1)(features(), torch.randn(N, N, dtype=torch.float64))


def test_all_others_miner_contract():
    mask = AllOthersMiner()(features(7, n=4))
    check_mask_contract(mask, 4)
    assert mask.sum().item() == 4 * 3


# ----------------------------------------------------------------------------- base-class validation
@pytest.mark.parametrize("bad", [torch.zeros(N), torch.zeros(2, 3, 4), torch.zeros(1, 3)])
def test_miner_rejects_bad_feature_shapes(bad):
    with pytest.raises(DataError):
        AllOthersMiner()(bad)
    with pytest.raises(DataError):
        KnnMiner(k=0)(bad)


class FloatMaskMiner(NegativeMiner):
    name = "float-mask"

    def mine(self, z, coef):
        return torch.ones(z.shape[0], z.shape[0])


class WrongShapeMiner(NegativeMiner):
    name = "wrong-shape"

    def mine(self, z, coef):
        return torch.ones(z.shape[0], z.shape[0] - 1, dtype=torch.bool)


class ListMiner(NegativeMiner):
    name = "list-mask"

    def mine(self, z, coef):
        return [[True] * z.shape[0]] * z.shape[0]


class DiagonalMiner(NegativeMiner):
    name = "diagonal"

    def mine(self, z, coef):
        return torch.ones(z.shape[0], z.shape[0], dtype=torch.bool)


@pytest.mark.parametrize("miner_cls", [FloatMaskMiner, WrongShapeMiner, ListMiner])
def test_misbehaving_miner_raises_plugin_error(miner_cls):
    with pytest.raises(PluginError):
        miner_cls()(features())


def test_base_class_clears_diagonal_of_subclass_masks():
    mask = DiagonalMiner()(features())
    check_mask_contract(mask, N)
    assert mask.sum().item() == N * (N - 1)


def test_base_class_calls_mine_without_grad():
    seen = {}

    class Spy(NegativeMiner):
        name = "spy"

        def mine(self, z, coef):
            seen["grad_enabled"] = torch.is_grad_enabled()
            seen["z_requires_grad"] = z.requires_grad
            seen["coef_requires_grad"] = coef.requires_grad
            return torch.ones(z.shape[0], z.shape[0], dtype=torch.bool)

    Spy()(features().requires_grad_(True), torch.zeros(N, N, requires_grad=True))
    assert seen == {"grad_enabled": False, "z_requires_grad": False, "coef_requires_grad": False}
