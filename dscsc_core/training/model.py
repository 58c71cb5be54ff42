"""The DSCSC network: shared encoder (PCB), self-expression (SEM), contrastive head (SCH), decoder (DRH)."""

from __future__ import annotations

import torch
from torch import nn

from dscsc_core.plugin_api.interfaces import AutoEncoderParts
from dscsc_core.training.supported_coef import CoefficientNetwork, SupportedSelfExpression


class SelfExpression(nn.Module):
    """An N x N coefficient matrix C in the paper's convention Z ≈ ZC.

    With features stored as rows (N x d) the self-expressed features are Cᵀ z; column i of C
    holds the coefficients that express sample i. ``init`` "normal" draws N(0, scale²) entries,
    "constant" sets every entry to ``scale`` (DSC-Net: 1e-8). ``diagonal`` "zero" keeps diag(C) = 0
    at every step (eq. 1); "free" leaves it a parameter like any other, as DSC-Net's code does.
    """

    def __init__(self, n_samples: int, scale: float, generator: torch.Generator | None = None,
                 init: str = "normal", diagonal: str = "zero"):
        super().__init__()
        if init == "constant":
            weights = torch.full((n_samples, n_samples), float(scale))
        else:
            weights = torch.randn(n_samples, n_samples, generator=generator) * scale
        self.masked = diagonal == "zero"
        self.weight = nn.Parameter(weights.fill_diagonal_(0.0) if self.masked else weights)
        if self.masked:
            self.register_buffer("off_diagonal", 1.0 - torch.eye(n_samples), persistent=False)

    def coefficients(self) -> torch.Tensor:
        # Masking (not just zeroing once) keeps diag(C) = 0 exactly, gradient steps included.
        return self.weight * self.off_diagonal if self.masked else self.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.coefficients().T @ z


def projection_head(latent_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """SCH G1: two stacked fully connected layers."""
    return nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


def head_fits(state: dict[str, torch.Tensor], head_hidden: int, head_dim: int) -> bool:
    """Whether a network state's projection head has these sizes (see ``projection_head``)."""
    return state["head.0.weight"].shape[0] == head_hidden and state["head.2.weight"].shape[0] == head_dim


class DSCSCNetwork(nn.Module):
    def __init__(self, parts: AutoEncoderParts, head_hidden: int, head_dim: int):
        super().__init__()
        self.encoder = parts.encoder
        self.decoder = parts.decoder
        self.homogeneous = parts.homogeneous
        self.head = projection_head(parts.latent_dim, head_hidden, head_dim)
        self.latent_dim = parts.latent_dim
        self.self_expression: SelfExpression | SupportedSelfExpression | None = None
        # The modules a training objective trains with the network, when it has any:
        # in the network, they are optimised and checkpointed with it.
        self.objective: nn.ModuleList | None = None

    def attach_objective_modules(self, modules: list[nn.Module]) -> None:
        if modules:
            self.objective = nn.ModuleList(modules)

    @torch.no_grad()
    def change_pixel_scale(self, factor: float) -> None:
        """Make the network fed with images × ``factor`` compute ``factor`` × what it computed before.

        For a positively homogeneous autoencoder (``AutoEncoderParts.homogeneous``) scaling every
        bias by the factor is exact: each ReLU layer gives relu(W·cx + c·b) = c·relu(W·x + b). The
        head is scaled too, so its cosine similarities do not change.
        """
        for module in (self.encoder, self.decoder, self.head):
            for name, parameter in module.named_parameters():
                if name.endswith("bias"):
                    parameter.mul_(factor)

    def attach_self_expression(self, n_samples: int, scale: float, generator: torch.Generator,
                               init: str = "normal", diagonal: str = "zero") -> None:
        device = next(self.encoder.parameters()).device
        self.self_expression = SelfExpression(n_samples, scale, generator, init, diagonal).to(device)

    def attach_supported_self_expression(self, support: torch.Tensor, bank: torch.Tensor, scale: float,
                                         generator: torch.Generator, init: str = "normal",
                                         model: str = "table") -> None:
        """C on a support of k neighbours per sample (``SupportedSelfExpression``), with the memory bank; its
        values stored (``model`` "table") or computed by a coefficient network ("network")."""
        network = CoefficientNetwork(bank.shape[1], support.shape[1]).to(bank.device) if model == "network" else None
        self.self_expression = SupportedSelfExpression(support, scale, generator, init, bank, network)
