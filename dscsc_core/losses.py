"""The paper's losses (eqs. 3-9), written once and vectorised over all N samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _probability_ceiling(dtype: torch.dtype) -> float:
    """Just below 1 in ``dtype``: keeps log(1 - P) finite when a probability rounds to 1."""
    return 1.0 - 8 * torch.finfo(dtype).eps


def _cosine_logits(rows: torch.Tensor, columns: torch.Tensor, temperature: float) -> torch.Tensor:
    """[r, c] = sim(rows_r, columns_c) / ρ; 1/ρ is applied to N x d, not N x N, for speed."""
    return F.normalize(rows, dim=1) @ (F.normalize(columns, dim=1) / temperature).T


def positive_log_likelihood(h: torch.Tensor, h_aug: torch.Tensor, temperature: float) -> torch.Tensor:
    """log P(i | x̂_i) of eq. 4 for every i: softmax over anchors k of sim(h_k, ĥ_i) / ρ."""
    # Row i of these logits holds sim(ĥ_i, h_k) / ρ over all anchors k.
    return torch.diagonal(torch.log_softmax(_cosine_logits(h_aug, h, temperature), dim=1))


def _anchor_probabilities_by_sample(h: torch.Tensor, temperature: float) -> torch.Tensor:
    """[j, i] = P(i | x_j). The logits are symmetric, so eq. 5's softmax over anchors is a row softmax."""
    return torch.softmax(_cosine_logits(h, h, temperature), dim=1)


def anchor_probabilities(h: torch.Tensor, temperature: float) -> torch.Tensor:
    """P(i | x_j) of eq. 5 as an N x N matrix [i, j]: softmax over anchors k of sim(h_k, h_j) / ρ."""
    return _anchor_probabilities_by_sample(h, temperature).T


def sch_loss(h: torch.Tensor, h_aug: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """Structural contrastive loss, eq. 8 (eq. 7 when ``negatives`` marks every j != i).

    ``negatives[i, j]`` is True when x_j is a negative of anchor i.
    """
    log_positive = positive_log_likelihood(h, h_aug, temperature)
    # Scaling by the ceiling (not clamping) keeps log(1 - P) finite at a cheaper backward pass.
    probabilities = _anchor_probabilities_by_sample(h, temperature)  # [j, i]
    log_not_anchor = torch.log1p(probabilities * -_probability_ceiling(probabilities.dtype))
    negative_total = torch.dot(log_not_anchor.flatten(), negatives.T.to(log_not_anchor.dtype).flatten())
    return -(log_positive.sum() + negative_total) / h.shape[0]


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


SEM_REDUCTIONS = ("sum", "mean")


def sem_loss(z: torch.Tensor, z_expressed: torch.Tensor, penalty: torch.Tensor, alpha: float,
             reduction: str = "sum") -> torch.Tensor:
    """Self-expression loss, eq. 3: α/2 ‖Z − ZC‖²_F + R(C).

    ``sum`` is eq. 3 as printed. ``mean`` divides it by N, putting it on the per-sample footing of
    L_DRH and L_SCH (both means over N), which is also DSC-Net's balance, where every term is a sum.
    With ``sum`` the term is N times heavier per sample, and the encoder can lower it by shrinking
    every feature, which the reconstruction term, a per-sample mean, barely resists.
    """
    loss = 0.5 * alpha * self_expression_residual(z, z_expressed) + penalty
    return loss / z.shape[0] if reduction == "mean" else loss


def default_alpha(n_clusters: int) -> float:
    """α = 10^(n/10 − 3) of §4.1, n the number of subspaces."""
    return float(10.0 ** (n_clusters / 10.0 - 3.0))
