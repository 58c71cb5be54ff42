"""DASC's subspace discriminator: its energy, its real and fake samples, and its two steps in the trainer."""

from __future__ import annotations

import math

import pytest
import torch

from dscsc_core.errors import ParameterError
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_plugins.adversarial import (
    SubspaceDiscriminator,
    best_fitting_members,
    combination_weights,
    discriminator_loss,
)

TINY = {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 2, "epochs": 4, "beta": 0.0,
        "clusterer": "spectral", "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}}}


def _run(registry, **overrides):
    return execute(prepare(resolve_config(registry, TINY, overrides), registry))


def test_relative_residual_is_the_share_of_z_its_clusters_basis_leaves_out():
    torch.manual_seed(0)
    discriminator = SubspaceDiscriminator(n_clusters=3, feature_dim=6, subspace_dim=2)
    with torch.no_grad():
        discriminator.bases.copy_(torch.randn(3, 6, 2))  # not orthonormal: the expansion must still hold
    z, labels = torch.randn(9, 6), torch.tensor([0, 1, 2] * 3)
    projected = torch.stack([discriminator.bases[label] @ (discriminator.bases[label].T @ v)
                             for v, label in zip(z, labels, strict=True)])
    expected = (z - projected).pow(2).sum(1) / z.pow(2).sum(1)
    assert torch.allclose(discriminator.relative_residuals(z, labels), expected, atol=1e-5)


def test_principal_directions_explain_samples_drawn_from_each_clusters_subspace():
    torch.manual_seed(1)
    spans = torch.linalg.qr(torch.randn(3, 10, 2)).Q  # three 2-dimensional subspaces of R^10
    labels = torch.arange(3).repeat_interleave(8)
    z = torch.einsum("ndr,nr->nd", spans[labels], torch.randn(24, 2))
    discriminator = SubspaceDiscriminator(3, 10, subspace_dim=2)
    discriminator.fit_principal_directions(z, labels)
    assert discriminator.relative_residuals(z, labels).abs().max() < 1e-5
    assert discriminator.coherence().item() == pytest.approx(0.0, abs=1e-5)  # orthonormal bases
    wrong = (labels + 1) % 3
    assert discriminator.relative_residuals(z, wrong).min() > 0.01  # other clusters' bases do not


def test_real_samples_are_the_best_fitted_share_of_each_cluster():
    residuals = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.2, 0.8, 0.7, 0.05])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2])
    real = best_fitting_members(residuals, labels, n_clusters=3, fraction=0.5)
    # ceil(0.5 x 3) = 2 of cluster 0, 2 of cluster 1, the single member of cluster 2.
    assert real.tolist() == [True, True, False, True, True, False, False, True]


def test_fakes_combine_only_their_own_clusters_real_samples():
    torch.manual_seed(2)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    real = torch.tensor([True, True, True, False, True, False])  # cluster 2 has no real sample
    weights, clusters = combination_weights(labels, real, n_clusters=3, per_cluster=4)
    assert weights.shape == (8, 6) and clusters.tolist() == [0] * 4 + [1] * 4
    used = weights != 0
    assert not used[:, ~real].any()
    assert (labels[None, :].expand_as(weights)[used] == clusters[:, None].expand_as(weights)[used]).all()
    assert weights.abs().max() <= 1 and (weights < 0).any()  # signed: the span, not only the hull


def test_discriminator_loss_rewards_fitting_reals_and_rejecting_fakes():
    low, high = torch.tensor([0.01, 0.02]), torch.tensor([0.6, 0.9])
    zero = torch.tensor(0.0)
    assert discriminator_loss(low, high, 0.5, zero).item() == pytest.approx(0.015)
    assert discriminator_loss(high, low, 0.5, zero).item() == pytest.approx(0.75 + 0.485)


def test_dasc_run_adds_the_generators_term_and_trains_the_discriminator(registry):
    result = _run(registry, objective="dasc", input_scale=2.0,
                  params={"objective": {"every": 2, "weight": 3.0, "dim": 2}})
    first = next(r.losses for r in result.history if (r.stage, r.epoch) == ("finetune", 1))
    # γ defaults to N = 30; the discriminator's loss is recorded but is not the generator's.
    expected = first["drh"] + 30 * first["sem"] + 3.0 * 2.0 ** 2 * first["adversarial"]
    assert first["total"] == pytest.approx(expected, rel=1e-5)
    assert first["adversarial"] > 0 and math.isfinite(first["discriminator"])
    stages = [r for r in result.history if r.stage == "finetune"]
    assert all("adversarial" in r.losses for r in stages) and result.labels.shape == (30,)
    assert "adversarial" not in _run(registry).history[-1].losses  # off by default


def test_dasc_without_relabelling_is_one_clear_error(registry):
    with pytest.raises(ParameterError, match="objective 'dasc' parameter 'every' must be >= 1; got 0"):
        _run(registry, objective="dasc", params={"objective": {"every": 0}})


def test_the_discriminator_steps_on_its_own_and_resumes_with_its_state(registry, tmp_path):
    """The discriminator is DASC's own: its bases and optimiser come back from a checkpoint, and so do the
    pseudo-labels, so a run stopped between two re-clusterings ends exactly as an uninterrupted one."""
    from dscsc_core.training.checkpoint import Checkpoint, TrainingInterrupted

    layer = {"objective": "dasc", "epochs": 6, "checkpoint_every": 3, "params": {"objective": {"every": 2}}}
    whole = _run(registry, **layer)
    calls = []
    # Stopped after Stage II epoch 3: the labels of epoch 3 hold for epoch 4, the resumed run's first.
    with pytest.raises(TrainingInterrupted):
        execute(prepare(resolve_config(registry, TINY, layer), registry), checkpoint_dir=tmp_path,
                should_stop=lambda: calls.append(1) or len(calls) == TINY["pretrain_epochs"] + 3)
    stopped = Checkpoint.load(tmp_path / "checkpoint.pt")
    assert stopped.stage == "finetune" and stopped.epoch == 3
    assert set(stopped.objective) == {"discriminator", "optimizer"} and len(stopped.pseudo_labels) == 30
    resumed = execute(prepare(resolve_config(registry, TINY, layer), registry), resume=stopped)
    assert [r.losses for r in resumed.history] == [r.losses for r in whole.history]
    assert (resumed.coef == whole.coef).all()
