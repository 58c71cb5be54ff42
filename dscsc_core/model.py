"""The DSCSC network: shared encoder (PCB), self-expression (SEM), contrastive head (SCH), decoder (DRH)."""

from __future__ import annotations

import torch
from torch import nn

from .interfaces import AutoEncoderParts


class SelfExpression(nn.Module):
    """An N x N coefficient matrix C with diag(C) = 0, in the paper's convention Z ≈ ZC.

    With features stored as rows (N x d) the self-expressed features are Cᵀ z; column i of C
    holds the coefficients that express sample i.
    """

    def __init__(self, n_samples: int, init_std: float, generator: torch.Generator | None = None):
        super().__init__()
        weights = torch.randn(n_samples, n_samples, generator=generator) * init_std
        self.weight = nn.Parameter(weights.fill_diagonal_(0.0))
        self.register_buffer("off_diagonal", 1.0 - torch.eye(n_samples), persistent=False)

    def coefficients(self) -> torch.Tensor:
        # Masking (not just zeroing once) keeps diag(C) = 0 exactly, gradient steps included.
        return self.weight * self.off_diagonal

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.coefficients().T @ z


def projection_head(latent_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """SCH G1: two stacked fully connected layers."""
    return nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class DSCSCNetwork(nn.Module):
    def __init__(self, parts: AutoEncoderParts, head_hidden: int, head_dim: int):
        super().__init__()
        self.encoder = parts.encoder
        self.decoder = parts.decoder
        self.head = projection_head(parts.latent_dim, head_hidden, head_dim)
        self.self_expression: SelfExpression | None = None

    def attach_self_expression(self, n_samples: int, init_std: float, generator: torch.Generator) -> None:
        device = next(self.encoder.parameters()).device
        self.self_expression = SelfExpression(n_samples, init_std, generator).to(device)
