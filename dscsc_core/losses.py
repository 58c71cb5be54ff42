"""The paper's losses (eqs. 3-9), written once and vectorised over all N samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Keeps log(1 - P) finite when a probability rounds to 1 in float32.
_PROB_CEILING = 1.0 - 1e-6


def positive_log_likelihood(h: torch.Tensor, h_aug: torch.Tensor, temperature: float) -> torch.Tensor:
    """log P(i | x̂_i) of eq. 4 for every i: softmax over anchors k of sim(h_k, ĥ_i) / ρ."""
    logits = F.normalize(h, dim=1) @ F.normalize(h_aug, dim=1).T / temperature  # [k, i]
    return torch.diagonal(torch.log_softmax(logits, dim=0))


def anchor_probabilities(h: torch.Tensor, temperature: float) -> torch.Tensor:
    """P(i | x_j) of eq. 5 as an N x N matrix [i, j]: softmax over anchors k of sim(h_k, h_j) / ρ."""
    unit = F.normalize(h, dim=1)
    return torch.softmax(unit @ unit.T / temperature, dim=0)


def sch_loss(h: torch.Tensor, h_aug: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """Structural contrastive loss, eq. 8 (eq. 7 when ``negatives`` marks every j != i).

    ``negatives[i, j]`` is True when x_j is a negative of anchor i.
    """
    log_positive = positive_log_likelihood(h, h_aug, temperature)
    log_not_anchor = torch.log1p(-anchor_probabilities(h, temperature).clamp(max=_PROB_CEILING))
    negative_term = (log_not_anchor * negatives.to(log_not_anchor.dtype)).sum(dim=1)
    return -(log_positive + negative_term).mean()


def drh_loss(x: torch.Tensor, y: torch.Tensor, x_aug: torch.Tensor, y_aug: torch.Tensor) -> torch.Tensor:
    """Reconstruction loss of both views, eq. 9: 1/(2N) Σ_i (½‖x_i − y_i‖² + ½‖x̂_i − ŷ_i‖²).

    The paper prints a leading minus sign; minimising it would reward bad reconstructions, so
    it is read as a typo.
    """
    n = x.shape[0]
    return (0.5 * (x - y).pow(2).sum() + 0.5 * (x_aug - y_aug).pow(2).sum()) / (2 * n)


def self_expression_residual(z: torch.Tensor, z_expressed: torch.Tensor) -> torch.Tensor:
    """‖Z − ZC‖²_F with Z stored as rows (N x d) and ``z_expressed`` = (ZC)ᵀ."""
    return (z - z_expressed).pow(2).sum()


def sem_loss(z: torch.Tensor, z_expressed: torch.Tensor, penalty: torch.Tensor, alpha: float) -> torch.Tensor:
    """Self-expression loss, eq. 3: α/2 ‖Z − ZC‖²_F + R(C)."""
    return 0.5 * alpha * self_expression_residual(z, z_expressed) + penalty


def default_alpha(n_clusters: int) -> float:
    """α = 10^(n/10 − 3) of §4.1, n the number of subspaces."""
    return float(10.0 ** (n_clusters / 10.0 - 3.0))
