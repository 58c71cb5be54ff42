"""The balance of the terms: the trainer's total is L_DRH + β·s²·L_SCH + γ·L_SEM with every term a sum,
one view without augmentation, no SCH term at β = 0, and input_scale applied once, by the trainer."""

from __future__ import annotations

import pytest
import torch

from dscsc_core.runner import execute, prepare, resolve_config

TINY = {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 2, "epochs": 2,
        "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}}}


def _run(registry, **overrides):
    return execute(prepare(resolve_config(registry, TINY, overrides), registry))


def _losses(result, stage, epoch):
    return next(r.losses for r in result.history if (r.stage, r.epoch) == (stage, epoch))


def test_total_is_drh_plus_scaled_beta_sch_plus_gamma_sem(registry):
    result = _run(registry, beta=3.0, gamma=0.5, input_scale=2.0)
    first = _losses(result, "finetune", 1)
    expected = first["drh"] + 3.0 * 2.0 ** 2 * first["sch"] + 0.5 * first["sem"]
    assert first["total"] == pytest.approx(expected, rel=1e-5)
    pre = _losses(result, "pretrain", 1)
    assert pre["total"] == pytest.approx(pre["drh"] + 3.0 * 4.0 * pre["sch"], rel=1e-5)


def test_without_augmentation_and_beta_there_is_one_view_and_no_sch(registry, monkeypatch):
    from dscsc_plugins.augmentations import NoAugmentation

    monkeypatch.setattr(NoAugmentation, "augment", lambda self, images: pytest.fail("identity policy was called"))
    result = _run(registry, augment="none", beta=0.0)
    assert set(_losses(result, "pretrain", 1)) == {"drh", "total"}
    assert set(_losses(result, "finetune", 1)) == {"drh", "sem", "total"}


def test_single_view_drh_is_half_the_summed_squared_error(registry):
    # Stage I with pretrain_epochs = 1 and no SCH: the reported L_DRH is ½‖X̂ − X‖² of the first step.
    run = prepare(resolve_config(registry, TINY, {"augment": "none", "beta": 0.0, "pretrain_objective": "drh",
                                                  "input_scale": 3.0}), registry)
    from dscsc_core.model import DSCSCNetwork

    torch.manual_seed(run.config.seed)
    network = DSCSCNetwork(run.components["encoder"].build(tuple(run.data.images.shape[1:])), 256, 64)
    x = run.data.images * 3.0  # the trainer, not the data, applies input_scale
    expected = 0.5 * (network.decoder(network.encoder(x)) - x).pow(2).sum().item()
    result = execute(run)
    assert _losses(result, "pretrain", 1)["drh"] == pytest.approx(expected, rel=1e-4)


def test_drh_pretraining_ignores_sch_and_augmentation(registry):
    plain = _run(registry, pretrain_objective="drh", augment="none", beta=0.0, epochs=0)
    with_sch = _run(registry, pretrain_objective="drh", epochs=0)  # geometric views and β = 10 in Stage II only
    assert [r.losses for r in plain.history] == [r.losses for r in with_sch.history]
    assert set(_losses(with_sch, "pretrain", 1)) == {"drh", "total"}
