"""The paper's losses (eqs. 3-9), written once and vectorised over all N samples.

Every term is a sum over samples, as in DSC-Net, where eqs. 8 and 9 print a mean (1/N): that is
the reading under which DSCSC without SCH and augmentation *is* DSC-Net (docs/method.md,
"The balance of the terms").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dscsc_core.settings import DRH_VIEW_COMBINES, SCH_DENOMINATORS


@dataclass(frozen=True)
class LossTerm:
    """One of Algorithm 1's loss terms, declared once: its key in a run's history and ``metrics.csv``, how it
    weighs into the total, and the settings to look at when it stops being finite. A training objective
    (``dscsc_core.TrainingObjective``) declares its own terms the same way (``ObjectiveTerm``)."""

    name: str
    meaning: str
    fed_by: str  # the settings that feed it, named in the error when it becomes NaN or Inf
    # Its weight in the total, from (training settings, the stage's pixel scale, γ); None: not in the total.
    weight: Callable[[object, float, float], float] | None = None


def _unweighted(config, pixel_scale: float, gamma: float) -> float:
    return 1.0


# In the order the total sums them, an objective's terms after SEM's (the order fixes the rounding, so stored
# runs stay reproducible); "total" last.
LOSS_TERMS: tuple[LossTerm, ...] = (
    LossTerm("drh", "reconstruction of every view (eq. 9)", "input_scale, lr", _unweighted),
    # L_DRH grows with the square of the pixel scale and L_SCH does not: weighing SCH by β·scale² keeps the
    # DRH : SCH balance that β sets independent of the pixel units.
    LossTerm("sch", "structural contrastive loss (eqs. 4-6)", "beta, temperature, input_scale, lr",
             lambda config, scale, gamma: config.beta * scale ** 2),
    LossTerm("sem", "self-expression (eq. 3)", "alpha, gamma, the regulariser's weight, input_scale, lr",
             lambda config, scale, gamma: gamma),
    LossTerm("total", "the weighted sum the optimiser steps on", "lr"),
)


def weighted_total(terms: dict[str, torch.Tensor], config, pixel_scale: float, gamma: float,
                   extra_weights: dict[str, float] | None = None) -> torch.Tensor:
    """Σ weight · term over the terms present: Algorithm 1's in ``LOSS_TERMS`` order, then ``extra_weights``'
    (an objective's terms, by name, in its order); the first term enters as it is."""
    weights = [(term.name, term.weight(config, pixel_scale, gamma)) for term in LOSS_TERMS if term.weight]
    total = None
    for name, weight in [*weights, *(extra_weights or {}).items()]:
        if name in terms:
            total = terms[name] if total is None else total + weight * terms[name]
    return total


def _probability_ceiling(dtype: torch.dtype) -> float:
    """Just below 1 in ``dtype``: keeps log(1 - P) finite when a probability rounds to 1."""
    return 1.0 - 8 * torch.finfo(dtype).eps


def _cosine_logits(rows: torch.Tensor, columns: torch.Tensor, temperature: float) -> torch.Tensor:
    """[r, c] = sim(rows_r, columns_c) / ρ; 1/ρ is applied to N x d, not N x N, for speed."""
    return F.normalize(rows, dim=1) @ (F.normalize(columns, dim=1) / temperature).T


def positive_log_likelihood(h: torch.Tensor, h_aug: torch.Tensor, temperature: float,
                            negatives: torch.Tensor | None = None) -> torch.Tensor:
    """log P(i | x̂_i) of eq. 4 for every i: softmax over anchors k of sim(h_k, ĥ_i) / ρ.

    With ``negatives`` (``negatives[i, k]``: x_k is a negative of anchor i) the softmax runs over the anchor
    itself and its negatives only: the neighbours the miner spared are not pushed away here either.
    """
    # Row i of these logits holds sim(ĥ_i, h_k) / ρ over all anchors k.
    logits = _cosine_logits(h_aug, h, temperature)
    if negatives is not None:
        kept = negatives | torch.eye(len(h), dtype=torch.bool, device=h.device)
        logits = logits.masked_fill(~kept, float("-inf"))
    return torch.diagonal(torch.log_softmax(logits, dim=1))


def anchor_probabilities_by_sample(h: torch.Tensor, temperature: float) -> torch.Tensor:
    """P(i | x_j) of eq. 5 as an N x N matrix [j, i].

    The logits are symmetric, so eq. 5's softmax over anchors is a row softmax.
    """
    return torch.softmax(_cosine_logits(h, h, temperature), dim=1)


def sch_loss(h: torch.Tensor, h_aug: torch.Tensor, negatives: torch.Tensor, temperature: float,
             denominator: str = "all") -> torch.Tensor:
    """Structural contrastive loss, eq. 8 (eq. 7 when ``negatives`` marks every j != i), summed over anchors.

    ``negatives[i, j]`` is True when x_j is a negative of anchor i. The paper's 1/N is left out:
    L_DRH is a sum too, so β keeps the paper's balance between the two (see the module docstring).
    ``denominator`` "negatives" spares the anchor's non-negatives in eq. 4's softmax as eq. 5 spares them.
    """
    if denominator not in SCH_DENOMINATORS:
        raise ValueError(f"denominator must be one of {', '.join(SCH_DENOMINATORS)}; got {denominator!r}")
    log_positive = positive_log_likelihood(h, h_aug, temperature, negatives if denominator == "negatives" else None)
    # Scaling by the ceiling (not clamping) keeps log(1 - P) finite at a cheaper backward pass.
    probabilities = anchor_probabilities_by_sample(h, temperature)  # [j, i]
    log_not_anchor = torch.log1p(probabilities * -_probability_ceiling(probabilities.dtype))
    negative_total = torch.dot(log_not_anchor.flatten(), negatives.T.to(log_not_anchor.dtype).flatten())
    return -(log_positive.sum() + negative_total)


def drh_loss(views: list[tuple[torch.Tensor, torch.Tensor]], combine: str = "mean") -> torch.Tensor:
    """Reconstruction loss, eq. 9 times N: ½ Σ_i ‖x_i − y_i‖² of each view, combined over views.

    ``views`` holds (images, reconstructions) pairs: the original view, and the augmented view
    when there is one. With one view this is DSC-Net's ½‖X − X̂‖²_F whatever ``combine`` says.
    With two, ``combine="mean"`` is eq. 9 as printed, ¼ Σ_i (‖x_i − y_i‖² + ‖x̂_i − ŷ_i‖²), which
    halves the original view's weight against L_SEM; ``"sum"`` keeps each view at DSC-Net's
    weight. The paper's leading minus sign is read as a typo: minimising it would reward bad
    reconstructions.
    """
    if combine not in DRH_VIEW_COMBINES:
        raise ValueError(f"combine must be one of {', '.join(DRH_VIEW_COMBINES)}; got {combine!r}")
    total = sum(0.5 * (x - y).pow(2).sum() for x, y in views)
    return total / len(views) if combine == "mean" else total


def self_expression_residual(z: torch.Tensor, z_expressed: torch.Tensor) -> torch.Tensor:
    """‖Z − ZC‖²_F with Z stored as rows (N x d) and ``z_expressed`` = (ZC)ᵀ."""
    return (z - z_expressed).pow(2).sum()


def sem_loss(z: torch.Tensor, z_expressed: torch.Tensor, penalty: torch.Tensor, alpha: float) -> torch.Tensor:
    """Self-expression loss, eq. 3: α/2 ‖Z − ZC‖²_F + R(C), sums over all samples as printed."""
    return 0.5 * alpha * self_expression_residual(z, z_expressed) + penalty


def default_alpha(n_clusters: int) -> float:
    """α = 10^(n/10 − 3) of §4.1, n the number of subspaces (DSC-Net's Yale B λ2)."""
    return float(10.0 ** (n_clusters / 10.0 - 3.0))


def default_gamma(n_samples: int) -> float:
    """γ = N when no preset sets it: one sample's reconstruction and contrast against the whole
    self-expression term, the balance of eqs. 8-9 (means) and eq. 3 (a sum) as the paper prints
    them. The ``dscnet-*`` presets set γ = 1, DSC-Net's balance (docs/method.md)."""
    return float(n_samples)
