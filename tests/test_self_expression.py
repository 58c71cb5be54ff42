"""SelfExpression: diag(C) = 0 always, and forward(z) = Cᵀ z (Z ≈ ZC with features as rows)."""

from __future__ import annotations

import torch

from dscsc_core.training.losses import self_expression_residual
from dscsc_core.training.model import SelfExpression

N, D = 8, 3


def make(seed: int = 0, std: float = 0.1) -> SelfExpression:
    return SelfExpression(N, std, torch.Generator().manual_seed(seed))


def test_initial_coefficients_have_zero_diagonal_and_random_off_diagonal():
    sem = make()
    coef = sem.coefficients()
    assert coef.shape == (N, N)
    assert torch.equal(coef.diagonal(), torch.zeros(N))
    off = coef[~torch.eye(N, dtype=torch.bool)]
    assert (off != 0).all()
    assert 0.02 < off.std().item() < 0.5  # init_std = 0.1


def test_init_is_seeded_by_generator():
    assert torch.equal(make(3).coefficients(), make(3).coefficients())
    assert not torch.equal(make(3).coefficients(), make(4).coefficients())


def test_forward_equals_coefficients_transposed_times_z():
    sem = make(1)
    z = torch.randn(N, D, generator=torch.Generator().manual_seed(2))
    out = sem(z)
    coef = sem.coefficients().detach()
    assert torch.allclose(out, coef.T @ z)
    # Explicitly: row i of the output is Σ_k C[k, i] z_k (column i of C expresses sample i).
    for i in range(N):
        expected = sum(coef[k, i] * z[k] for k in range(N))
        assert torch.allclose(out[i], expected, atol=1e-6)


def test_diagonal_stays_zero_under_adam_even_when_the_loss_rewards_it():
    torch.manual_seed(0)
    sem = make(5, std=1e-4)
    z = torch.randn(N, D)
    optimizer = torch.optim.Adam(sem.parameters(), lr=1e-2)
    residual_start = self_expression_residual(z, sem(z)).item()
    for _ in range(60):
        optimizer.zero_grad()
        # ‖Z − ZC‖² is minimised by C = I; the second term directly rewards a large raw diagonal.
        loss = self_expression_residual(z, sem(z)) - sem.weight.diagonal().sum()
        loss.backward()
        assert sem.weight.grad.diagonal().abs().sum() > 0  # the raw diagonal does get pushed
        optimizer.step()
        assert torch.equal(sem.coefficients().diagonal(), torch.zeros(N))
    # The raw parameter's diagonal moved; the coefficients' did not; the fit still improved.
    assert (sem.weight.diagonal() > 0.1).all()
    residual_end = self_expression_residual(z, sem(z)).item()
    assert residual_end < 0.5 * residual_start
    # The gradient of the residual itself never reaches the masked diagonal.
    sem.weight.grad = None
    self_expression_residual(z, sem(z)).backward()
    assert torch.equal(sem.weight.grad.diagonal(), torch.zeros(N))
    assert sem.weight.grad.abs().sum() > 0


def test_mask_is_a_non_persistent_buffer_and_weight_is_the_only_parameter():
    sem = make()
    assert [name for name, _ in sem.named_parameters()] == ["weight"]
    assert "off_diagonal" not in sem.state_dict()
    assert torch.equal(sem.off_diagonal, 1.0 - torch.eye(N))


def test_constant_init_sets_every_entry_and_a_free_diagonal_learns():
    # DSC-Net's handling: C = 1e-8 everywhere, the diagonal a parameter like any other.
    sem = SelfExpression(N, 1e-8, init="constant", diagonal="free")
    assert torch.equal(sem.coefficients(), torch.full((N, N), 1e-8))
    assert not hasattr(sem, "off_diagonal")
    # N linearly independent feature rows: C = I is the only exact self-expression.
    z = torch.randn(N, 4 * N, generator=torch.Generator().manual_seed(3))
    optimizer = torch.optim.Adam(sem.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        self_expression_residual(z, sem(z)).backward()
        optimizer.step()
    # ‖Z − ZC‖² alone is minimised by C = I: a free diagonal moves towards it.
    assert (sem.coefficients().diagonal() > 0.3).all()


def test_constant_init_with_zero_diagonal_keeps_it_zero():
    sem = SelfExpression(N, 0.5, init="constant", diagonal="zero")
    assert torch.equal(sem.coefficients().diagonal(), torch.zeros(N))
    assert torch.equal(sem.coefficients()[~torch.eye(N, dtype=torch.bool)], torch.full((N * N - N,), 0.5))
