"""Training objectives of the deep baselines: S2ConvSCN's self-supervision and DASC's adversarial discriminator.

Both add Stage II terms that read pseudo-labels, the run's own clusterer on the current C, renewed every
``every`` epochs (the core provides them: ``TrainingObjective.relabel_every``). docs/method.md has our reading
of each paper.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dscsc_core import DataError, ObjectiveTerm, Param, StageTwoStep, TrainingObjective

from .adversarial import (
    SubspaceDiscriminator,
    best_fitting_members,
    combination_weights,
    discriminator_loss,
    fakes_per_cluster,
)

_EVERY = Param("every", int, 5, "re-cluster C into pseudo-labels every E Stage II epochs", min=1)


def label_disagreement(coef: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """S2ConvSCN's ‖C‖_Q: Σ |C_ij| over the pairs whose pseudo-labels differ (Q_ij = ½‖q_i − q_j‖²
    for one-hot q), so coefficients across the current clusters are penalised."""
    apart = labels[:, None] != labels[None, :]
    return (coef.abs() * apart).sum()


def pseudo_label_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the classifier on the pseudo-labels, summed over samples like every term."""
    return F.cross_entropy(logits, labels, reduction="sum")


class S2ConvSCNObjective(TrainingObjective):
    name = "s2convscn"
    summary = "S2ConvSCN: pseudo-labels from C weigh C's cross-cluster entries and train a classifier on the features"
    params = (
        _EVERY,
        Param("agreement_weight", float, 0.1, "lambda3: weight of sum |C_ij| over pairs the pseudo-labels put apart",
              min=0),
        Param("classifier_weight", float, 1.0,
              "lambda4: weight of a linear classifier's cross-entropy (summed) on the pseudo-labels", min=0),
    )
    terms = (
        ObjectiveTerm("agreement", "|C_ij| over pairs the pseudo-labels put apart", "objective.agreement_weight, lr",
                      weight="agreement_weight"),
        ObjectiveTerm("pseudo", "a linear classifier's cross-entropy on the pseudo-labels",
                      "objective.classifier_weight, lr", weight="classifier_weight"),
    )

    @property
    def relabel_every(self) -> int:
        return self.every

    def setup(self, latent_dim: int, n_samples: int, n_clusters: int, device: torch.device,
              lr: float) -> list[nn.Module]:
        # Trained with the network by the run's optimiser; drawn from torch's generator at this point of the run.
        self.classifier = nn.Linear(latent_dim, n_clusters).to(device) if self.classifier_weight > 0 else None
        return [self.classifier] if self.classifier is not None else []

    def losses(self, step: StageTwoStep) -> dict[str, torch.Tensor]:
        terms = {}
        if self.agreement_weight > 0:
            terms["agreement"] = label_disagreement(step.coef, step.labels)
        if self.classifier is not None:
            terms["pseudo"] = pseudo_label_loss(self.classifier(step.features), step.labels)
        return terms


class DascObjective(TrainingObjective):
    name = "dasc"
    summary = ("DASC: an adversarial subspace discriminator, one subspace per current cluster, judging the "
               "cluster's samples against random combinations of them")
    params = (
        _EVERY,
        Param("weight", float, 10.0, "weight of the generator's adversarial term, its fakes' residual on the "
              "discriminator's subspaces (× the pixel scale², as β)", min=0),
        Param("dim", int, 4, "dimension of each cluster's subspace in the discriminator", min=1, max=1024),
        Param("real_fraction", float, 0.8, "share of each cluster (best fitted by its subspace) taken as real "
              "samples", min=0.01, max=1.0),
        Param("margin", float, 0.5, "relative residual the discriminator pushes fakes above (hinge margin, 0..1)",
              min=0, max=1.0),
    )
    terms = (
        ObjectiveTerm("adversarial", "the generator's fakes' residual on the discriminator's subspaces",
                      "objective.weight, objective.margin, lr", weight="weight", by_pixel_scale=True),
        ObjectiveTerm("discriminator", "the discriminator's own loss, from its separate step (recorded only)",
                      "objective.dim, objective.margin, lr"),
    )

    @property
    def relabel_every(self) -> int:
        return self.every

    def setup(self, latent_dim: int, n_samples: int, n_clusters: int, device: torch.device,
              lr: float) -> list[nn.Module]:
        # The discriminator is the generator's adversary: it steps on its own loss with its own Adam (the run's
        # learning rate), never with the network's, so each side moves only its own parameters.
        self.discriminator = SubspaceDiscriminator(n_clusters, latent_dim, self.dim).to(device)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, fused=True)
        self.fakes = fakes_per_cluster(n_samples, n_clusters)
        return []

    def losses(self, step: StageTwoStep) -> dict[str, torch.Tensor]:
        """One discriminator step on the fixed features, then the generator's term (summed over fakes, like
        every term) and, for the record only, the discriminator's loss."""
        discriminator, fixed = self.discriminator, step.features.detach()
        if step.relabelled:  # new label numbers: the old bases belong to no cluster now
            discriminator.fit_principal_directions(fixed, step.labels)
            self.optimizer.state.pop(discriminator.bases, None)
        residuals = discriminator.relative_residuals(fixed, step.labels)  # once: it picks the reals and scores them
        real = best_fitting_members(residuals.detach(), step.labels, discriminator.n_clusters, self.real_fraction)
        weights, fake_labels = combination_weights(step.labels, real, discriminator.n_clusters, self.fakes)
        judged = discriminator_loss(residuals[real], discriminator.relative_residuals(weights @ fixed, fake_labels),
                                    self.margin, discriminator.coherence())
        self._step_discriminator(judged, step.epoch)
        accepted = discriminator.relative_residuals(weights @ step.features, fake_labels,
                                                    discriminator.bases.detach())
        return {"adversarial": accepted.sum(), "discriminator": judged.detach()}

    def _step_discriminator(self, loss: torch.Tensor, epoch: int) -> None:
        if not torch.isfinite(loss):
            raise DataError(f"loss term discriminator became {loss.item()} in finetune epoch {epoch} (the last "
                            f"checkpoint, if any, is kept); the settings that feed it: {self.terms[1].fed_by}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
