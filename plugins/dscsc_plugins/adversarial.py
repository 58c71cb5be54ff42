"""DASC's adversarial subspace discriminator (Zhou et al., CVPR 2018), vectorised over samples.

The generator is the DSC network; after each re-clustering of C, the discriminator holds one
r-dimensional linear subspace per cluster (a d x r basis). Its energy for a sample z of cluster l
is the share of z that the basis U_l does not explain, ‖z − U_l U_lᵀ z‖² / ‖z‖². "Real" samples are
the members of each cluster that its subspace fits best; "fake" samples are random linear
combinations of a cluster's real samples, which lie in the cluster's subspace exactly when the
cluster is one subspace. The discriminator learns to give real samples a low energy and fakes an
energy above a margin; the generator learns features whose fakes the discriminator accepts.

Our reading of what the DASC paper leaves open is in docs/method.md ("DASC"): the residual is
relative (scale-free, so the margin does not depend on the pixel scale), every cluster gets as
many fakes as N/K, and the bases restart from each cluster's principal directions whenever the
labels change (the clusterer's label numbers carry no identity from one clustering to the next).
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Keeps the relative residual of an all-zero feature vector finite (it is 0: nothing to explain).
_NORM_FLOOR = 1e-12


class SubspaceDiscriminator(nn.Module):
    """K bases of r directions in the d-dimensional feature space, stored as one (K, d, r) tensor."""

    def __init__(self, n_clusters: int, feature_dim: int, subspace_dim: int):
        super().__init__()
        self.subspace_dim = min(subspace_dim, feature_dim)
        self.bases = nn.Parameter(torch.zeros(n_clusters, feature_dim, self.subspace_dim))

    @property
    def n_clusters(self) -> int:
        return self.bases.shape[0]

    @torch.no_grad()
    def fit_principal_directions(self, z: torch.Tensor, labels: torch.Tensor) -> None:
        """Restart every basis at the top principal directions (uncentred: subspaces pass through 0)
        of its cluster's features. One SVD per cluster: K is small, and this runs only on re-clustering."""
        self.bases.zero_()
        for cluster in range(self.n_clusters):
            members = z[labels == cluster]
            if members.shape[0] == 0:
                continue
            _, _, right = torch.linalg.svd(members, full_matrices=False)
            directions = right[: self.subspace_dim].T
            self.bases[cluster, :, : directions.shape[1]] = directions

    def relative_residuals(self, z: torch.Tensor, labels: torch.Tensor,
                           bases: torch.Tensor | None = None) -> torch.Tensor:
        """‖z_i − U U ᵀ z_i‖² / ‖z_i‖² with U the basis of sample i's cluster, for every row of z.

        Expanded as ‖z‖² − 2‖a‖² + aᵀ(UᵀU)a with a = Uᵀz, so no d x d projector is formed and U
        need not be orthonormal. ``bases`` replaces the module's own (e.g. detached)."""
        bases = self.bases if bases is None else bases
        k, d, r = bases.shape
        coords = (z @ bases.permute(1, 0, 2).reshape(d, k * r)).view(-1, k, r)
        own = coords[torch.arange(z.shape[0], device=z.device), labels]  # (n, r)
        gram = bases.transpose(1, 2) @ bases  # (K, r, r)
        explained = 2 * own.pow(2).sum(1) - torch.einsum("nr,nrs,ns->n", own, gram[labels], own)
        squared_norm = z.pow(2).sum(1)
        return (squared_norm - explained) / squared_norm.clamp_min(_NORM_FLOOR)

    def coherence(self) -> torch.Tensor:
        """Σ_l ‖U_lᵀU_l − I‖²_F: keeps each basis orthonormal. Bases of different clusters are not
        pushed apart: K·r often exceeds the feature dimension (ORL: 40 x 4 against 48)."""
        gram = self.bases.transpose(1, 2) @ self.bases
        return (gram - torch.eye(gram.shape[1], device=gram.device)).pow(2).sum()


def best_fitting_members(residuals: torch.Tensor, labels: torch.Tensor, n_clusters: int,
                         fraction: float) -> torch.Tensor:
    """Mask of the ⌈fraction · n_l⌉ members of each cluster l with the smallest residuals (DASC's
    real samples). Ranks within clusters come from one sort by residual and a stable sort by label."""
    by_residual = torch.argsort(residuals)
    order = by_residual[torch.argsort(labels[by_residual], stable=True)]
    sizes = torch.bincount(labels, minlength=n_clusters)
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.empty_like(labels)
    rank[order] = torch.arange(labels.shape[0], device=labels.device) - starts[labels[order]]
    keep = torch.ceil(sizes.to(residuals.dtype) * fraction).long()
    return rank < keep[labels]


def combination_weights(labels: torch.Tensor, real: torch.Tensor, n_clusters: int,
                        per_cluster: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (F x N) of DASC's fake samples, F = per_cluster x (clusters with real members): each
    row combines one cluster's real samples with weights drawn uniformly from [-1, 1], so the fakes
    spread over the span of the cluster, not only its convex hull (with non-negative ReLU features
    that hull hugs the cluster's mean, which any basis explains). The residual is relative, so the
    weights' scale does not matter. Returns the weights and each fake's cluster. Draws from torch's
    global generator (seeded, checkpointed)."""
    membership = torch.zeros(n_clusters, labels.shape[0], device=labels.device)
    membership[labels[real], torch.nonzero(real).squeeze(1)] = 1.0
    populated = membership.sum(1) > 0
    membership = membership[populated]
    draws = torch.rand(membership.shape[0], per_cluster, labels.shape[0], device=labels.device)
    weights = (2 * draws - 1) * membership[:, None]
    clusters = torch.nonzero(populated).squeeze(1).repeat_interleave(per_cluster)
    return weights.reshape(-1, labels.shape[0]), clusters


def fakes_per_cluster(n_samples: int, n_clusters: int) -> int:
    """As many fakes per cluster as a cluster has members on average."""
    return max(1, math.ceil(n_samples / n_clusters))


def discriminator_loss(real_residuals: torch.Tensor, fake_residuals: torch.Tensor, margin: float,
                       coherence: torch.Tensor) -> torch.Tensor:
    """Real samples' energy, fakes' shortfall below the margin (hinge), and the bases' coherence."""
    return real_residuals.mean() + torch.relu(margin - fake_residuals).mean() + coherence
