"""The paper's losses (eqs. 3-9) against independent, explicitly looped reference computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dscsc_core.training.losses import (
    anchor_probabilities_by_sample,
    default_alpha,
    drh_loss,
    positive_log_likelihood,
    sch_loss,
    self_expression_residual,
    sem_loss,
)
from dscsc_plugins.regularizers import FrobeniusRegularizer, L1Regularizer

# Tiny hand-made inputs: N = 3 anchors, d = 2 features, all pairwise distinct directions.
H = [[1.0, 0.0], [0.6, 0.8], [-1.0, 2.0]]
H_AUG = [[0.9, 0.1], [0.0, 1.0], [-2.0, 3.0]]
RHO = 0.5


# ----------------------------------------------------------------------------- plain-python references
def cos(u, v):
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def ref_p_pos(h, h_aug, rho, i):
    """P(i | x̂_i), eq. 4."""
    den = sum(math.exp(cos(h[k], h_aug[i]) / rho) for k in range(len(h)))
    return math.exp(cos(h[i], h_aug[i]) / rho) / den


def ref_p_anchor(h, rho, i, j):
    """P(i | x_j), eq. 5."""
    den = sum(math.exp(cos(h[k], h[j]) / rho) for k in range(len(h)))
    return math.exp(cos(h[i], h[j]) / rho) / den


def ref_sch(h, h_aug, rho, is_negative):
    """Eq. 7/8 times N (summed over anchors): -Σ_i [log P(i|x̂_i) + Σ_{j negative of i} log(1 - P(i|x_j))]."""
    n = len(h)
    total = 0.0
    for i in range(n):
        term = math.log(ref_p_pos(h, h_aug, rho, i))
        for j in range(n):
            if is_negative(i, j):
                term += math.log(1.0 - ref_p_anchor(h, rho, i, j))
        total += term
    return -total


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


# ----------------------------------------------------------------------------- eq. 4
def test_positive_log_likelihood_matches_eq4_by_hand():
    got = positive_log_likelihood(t(H), t(H_AUG), RHO)
    assert got.shape == (3,)
    expected = [math.log(ref_p_pos(H, H_AUG, RHO, i)) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert (got < 0).all()


def test_positive_log_likelihood_entry_fully_by_hand():
    # h = e1, e2; ĥ = e1, e1. cos(h0, ĥ0) = 1, cos(h1, ĥ0) = 0, ρ = 1:
    # P(0|x̂_0) = e / (e + 1); for i = 1: cos(h1, ĥ1) = 0, cos(h0, ĥ1) = 1 -> P = 1 / (e + 1).
    h = t([[1.0, 0.0], [0.0, 1.0]])
    h_aug = t([[2.0, 0.0], [3.0, 0.0]])
    got = positive_log_likelihood(h, h_aug, 1.0)
    e = math.e
    np.testing.assert_allclose(got.numpy(), [math.log(e / (e + 1)), math.log(1 / (e + 1))], rtol=1e-12)


def test_positive_log_likelihood_is_scale_invariant_cosine():
    got = positive_log_likelihood(t(H), t(H_AUG), RHO)
    scaled = positive_log_likelihood(t(H) * torch.tensor([[3.0], [0.2], [7.0]], dtype=torch.float64),
                                     t(H_AUG) * 5.0, RHO)
    np.testing.assert_allclose(got.numpy(), scaled.numpy(), rtol=1e-10)


# ----------------------------------------------------------------------------- eq. 5
def anchor_probabilities(h, rho):
    """[i, j] = P(i | x_j)."""
    return anchor_probabilities_by_sample(h, rho).T


def test_anchor_probabilities_columns_sum_to_one_and_entries_match_eq5():
    p = anchor_probabilities(t(H), RHO)
    assert p.shape == (3, 3)
    np.testing.assert_allclose(p.sum(dim=0).numpy(), np.ones(3), rtol=1e-12)
    for i in range(3):
        for j in range(3):
            assert p[i, j].item() == pytest.approx(ref_p_anchor(H, RHO, i, j), rel=1e-10)
    # The matrix is indexed [i, j] = P(i | x_j): rows do NOT sum to one in general.
    assert not np.allclose(p.sum(dim=1).numpy(), np.ones(3))


def test_anchor_probabilities_specific_entry_by_hand():
    # h0 = e1, h1 = e2, h2 = -e1, ρ = 1. Column j = 0: cos(h_k, h0) = 1, 0, -1.
    # P(1 | x_0) = e^0 / (e^1 + e^0 + e^-1).
    h = t([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    p = anchor_probabilities(h, 1.0)
    e = math.e
    assert p[1, 0].item() == pytest.approx(1.0 / (e + 1.0 + 1.0 / e), rel=1e-12)
    assert p[0, 0].item() == pytest.approx(e / (e + 1.0 + 1.0 / e), rel=1e-12)
    assert p[2, 0].item() == pytest.approx((1.0 / e) / (e + 1.0 + 1.0 / e), rel=1e-12)


# ----------------------------------------------------------------------------- eq. 7 and eq. 8
def all_others(n):
    return ~torch.eye(n, dtype=torch.bool)


def test_sch_loss_eq7_all_others_by_hand():
    got = sch_loss(t(H), t(H_AUG), all_others(3), RHO).item()
    expected = ref_sch(H, H_AUG, RHO, lambda i, j: i != j)
    assert got == pytest.approx(expected, rel=1e-10)
    assert got > 0


def test_sch_loss_eq8_knn_mask_drops_exactly_the_spared_terms():
    # kNN-style mask: anchor 0 spares 1, anchor 1 spares 0, anchor 2 spares 1.
    spared = {(0, 1), (1, 0), (2, 1)}
    mask = all_others(3)
    for i, j in spared:
        mask[i, j] = False
    eq7 = sch_loss(t(H), t(H_AUG), all_others(3), RHO).item()
    eq8 = sch_loss(t(H), t(H_AUG), mask, RHO).item()

    assert eq8 == pytest.approx(ref_sch(H, H_AUG, RHO, lambda i, j: i != j and (i, j) not in spared), rel=1e-10)
    # Eq. 7 subtracts Σ log(1-P) over every negative; eq. 8 leaves out the spared pairs,
    # so eq. 8 - eq. 7 = Σ_{(i,j) spared} log(1 - P(i|x_j)) (< 0 because log(1-P) < 0).
    dropped = sum(math.log(1.0 - ref_p_anchor(H, RHO, i, j)) for i, j in spared)
    assert eq8 - eq7 == pytest.approx(dropped, rel=1e-9)
    assert eq8 < eq7


def test_sch_loss_with_no_negatives_is_the_summed_negative_log_positive():
    empty = torch.zeros(3, 3, dtype=torch.bool)
    got = sch_loss(t(H), t(H_AUG), empty, RHO).item()
    expected = -sum(math.log(ref_p_pos(H, H_AUG, RHO, i)) for i in range(3))
    assert got == pytest.approx(expected, rel=1e-10)


def test_sch_loss_float32_matches_float64_reference():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 4, generator=g)
    h_aug = h + 0.3 * torch.randn(5, 4, generator=g)
    got = sch_loss(h, h_aug, all_others(5), 0.1).item()
    expected = ref_sch(h.double().tolist(), h_aug.double().tolist(), 0.1, lambda i, j: i != j)
    assert got == pytest.approx(expected, rel=1e-5)


def test_sch_loss_gradient_finite_at_low_temperature_on_nearly_identical_vectors():
    torch.manual_seed(0)
    base = torch.randn(1, 8)
    h = (base + 1e-4 * torch.randn(6, 8)).requires_grad_(True)
    h_aug = (base + 1e-4 * torch.randn(6, 8)).requires_grad_(True)
    loss = sch_loss(h, h_aug, all_others(6), 0.01)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(h.grad).all() and torch.isfinite(h_aug.grad).all()
    assert h.grad.abs().sum() > 0


def test_sch_loss_gradient_finite_when_probabilities_saturate():
    # Orthogonal, well separated vectors at ρ = 0.01: P(i|x_i) rounds to 1 in float32.
    h = torch.eye(4).requires_grad_(True)
    h_aug = (torch.eye(4) + 0.01).requires_grad_(True)
    loss = sch_loss(h, h_aug, torch.ones(4, 4, dtype=torch.bool), 0.01)  # diagonal included on purpose
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(h.grad).all() and torch.isfinite(h_aug.grad).all()


# ----------------------------------------------------------------------------- eq. 9
def test_drh_loss_two_views_is_n_times_eq9_by_hand():
    x = t([[[[1.0, 2.0]]], [[[0.0, -1.0]]], [[[3.0, 3.0]]]])  # N=3, 1x1x2 images
    y = t([[[[0.0, 2.0]]], [[[1.0, 1.0]]], [[[3.0, 0.0]]]])
    x_aug = t([[[[1.0, 1.0]]], [[[2.0, 2.0]]], [[[0.0, 0.0]]]])
    y_aug = t([[[[1.0, 0.0]]], [[[2.0, 2.0]]], [[[0.5, 0.0]]]])
    # ‖x_i - y_i‖²: 1, 1 + 4, 9 -> 15; ‖x̂_i - ŷ_i‖²: 1, 0, 0.25 -> 1.25.
    # eq. 9: 1/(2N) Σ (½ a_i + ½ b_i) = (7.5 + 0.625) / 6; dscsc sums over samples: N times that.
    expected = 3 * (0.5 * 15.0 + 0.5 * 1.25) / 6.0
    assert drh_loss([(x, y), (x_aug, y_aug)]).item() == pytest.approx(expected, rel=1e-12)


def test_drh_loss_sum_keeps_each_view_at_dscnets_weight():
    x, y = t([[[[1.0, 2.0]]], [[[0.0, -1.0]]]]), t([[[[0.0, 2.0]]], [[[1.0, 1.0]]]])
    x_aug, y_aug = t([[[[1.0, 1.0]]], [[[2.0, 2.0]]]]), t([[[[1.0, 0.0]]], [[[2.0, 2.0]]]])
    # ½ (1 + 1 + 4) for the original view plus ½ · 1 for the augmented one; the mean halves it.
    assert drh_loss([(x, y), (x_aug, y_aug)], "sum").item() == pytest.approx(3.5, rel=1e-12)
    assert drh_loss([(x, y), (x_aug, y_aug)], "mean").item() == pytest.approx(1.75, rel=1e-12)
    assert drh_loss([(x, y)], "sum").item() == drh_loss([(x, y)], "mean").item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="mean, sum"):
        drh_loss([(x, y)], "max")


def test_drh_loss_one_view_is_dscnets_half_squared_error():
    x = t([[[[1.0, 2.0]]], [[[0.0, -1.0]]]])
    y = t([[[[0.0, 2.0]]], [[[1.0, 1.0]]]])
    # DSC-Net (TensorFlow): ½‖X̂ - X‖²_F = ½ (1 + 1 + 4) = 3.
    assert drh_loss([(x, y)]).item() == pytest.approx(3.0, rel=1e-12)


def test_drh_loss_loop_reference_and_non_negative():
    rng = np.random.default_rng(1)
    x, y, xa, ya = (rng.normal(size=(4, 1, 3, 2)) for _ in range(4))
    expected = 0.0
    for i in range(x.shape[0]):
        expected += 0.25 * float(((x[i] - y[i]) ** 2).sum()) + 0.25 * float(((xa[i] - ya[i]) ** 2).sum())
    tensors = [torch.from_numpy(a) for a in (x, y, xa, ya)]
    got = drh_loss([(tensors[0], tensors[1]), (tensors[2], tensors[3])]).item()
    assert got == pytest.approx(expected, rel=1e-12)
    assert drh_loss([(tensors[0], tensors[0]), (tensors[2], tensors[2])]).item() == 0


# ----------------------------------------------------------------------------- eq. 3
Z = [[1.0, 2.0], [0.0, 1.0], [-1.0, 1.0]]  # N = 3 rows z_i, d = 2
C = [[0.0, 0.5, -1.0], [2.0, 0.0, 0.25], [0.0, 1.0, 0.0]]  # column i expresses sample i


def ref_residual(z, c):
    """‖Z - ZC‖²_F with Z = [z_1 ... z_N] (d x N): column i of ZC is Σ_k z_k C[k, i]."""
    n, d = len(z), len(z[0])
    total = 0.0
    for i in range(n):
        for a in range(d):
            expressed = sum(z[k][a] * c[k][i] for k in range(n))
            total += (z[i][a] - expressed) ** 2
    return total


def test_self_expression_residual_by_hand():
    z = t(Z)
    c = t(C)
    got = self_expression_residual(z, c.T @ z).item()
    assert got == pytest.approx(ref_residual(Z, C), rel=1e-12)
    # The fully hand-computed value: expressed rows are 2 z_1 = (0, 2), 0.5 z_0 + z_2 = (-0.5, 2),
    # -z_0 + 0.25 z_1 = (-1, -1.75) -> residuals (1, 0), (0.5, -1), (0, 2.75) -> 1 + 1.25 + 7.5625.
    assert got == pytest.approx(9.8125, rel=1e-12)


@pytest.mark.parametrize("alpha", [1.0, 0.2, default_alpha(38)])
def test_sem_loss_eq3_with_frobenius_penalty(alpha):
    z, c = t(Z), t(C)
    penalty = FrobeniusRegularizer()(c)
    frobenius = sum(v * v for row in C for v in row)  # 0.25 + 1 + 4 + 0.0625 + 1 = 6.3125
    assert frobenius == 6.3125
    assert penalty.item() == pytest.approx(frobenius)
    got = sem_loss(z, c.T @ z, penalty, alpha).item()
    assert got == pytest.approx(alpha / 2 * 9.8125 + 6.3125, rel=1e-12)


def test_sem_loss_eq3_with_l1_penalty_and_weight():
    z, c = t(Z), t(C)
    penalty = L1Regularizer(weight=0.5)(c)
    l1 = sum(abs(v) for row in C for v in row)  # 0.5 + 1 + 2 + 0.25 + 1 = 4.75
    assert penalty.item() == pytest.approx(0.5 * l1)
    got = sem_loss(z, c.T @ z, penalty, 2.0).item()
    assert got == pytest.approx(1.0 * 9.8125 + 0.5 * 4.75, rel=1e-12)


def test_sem_loss_gradient_matches_analytic_form():
    # d/dC [α/2 ‖Z - ZC‖² + ‖C‖²] = -α Zᵀ(Z - ZC) + 2C, with Z the d x N matrix.
    z = t(Z)
    c = t(C).requires_grad_(True)
    loss = sem_loss(z, c.T @ z, FrobeniusRegularizer()(c), 3.0)
    loss.backward()
    zc = z.T.numpy()  # d x N
    cn = np.array(C)
    expected = -3.0 * zc.T @ (zc - zc @ cn) + 2 * cn
    np.testing.assert_allclose(c.grad.numpy(), expected, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- α of §4.1
@pytest.mark.parametrize("n,expected", [(40, 10.0), (30, 1.0), (20, 0.1), (38, 10 ** 0.8), (10, 0.01), (0, 0.001)])
def test_default_alpha(n, expected):
    assert default_alpha(n) == pytest.approx(expected, rel=1e-12)
    assert isinstance(default_alpha(n), float)
