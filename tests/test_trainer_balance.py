"""The balance of the terms: the trainer's total is L_DRH + β·s²·L_SCH + γ·L_SEM with every term a sum,
one view without augmentation, no SCH term at β = 0, and input_scale applied once, by the trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dscsc_core.errors import DataError
from dscsc_core.run.pipeline import execute, prepare, resolve_config

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


def test_gamma_defaults_to_the_number_of_samples_and_is_reported(registry):
    result = _run(registry, beta=0.0)  # γ unset: N = 3 subspaces x 10 samples
    first = _losses(result, "finetune", 1)
    assert first["total"] == pytest.approx(first["drh"] + 30 * first["sem"], rel=1e-5)
    assert result.summary["config"]["gamma"] == 30.0
    assert _run(registry, beta=0.0, gamma=2.0).summary["config"]["gamma"] == 2.0


def test_drh_views_setting_reaches_the_trainer_and_old_fingerprints_stay(registry):
    from dscsc_core.run.identity import result_fingerprint, settings_fingerprint

    summed = _losses(_run(registry, beta=0.0, drh_views="sum"), "finetune", 1)
    averaged = _losses(_run(registry, beta=0.0), "finetune", 1)
    # Same seed, same first step: two views summed weigh twice their mean.
    assert summed["drh"] == pytest.approx(2 * averaged["drh"], rel=1e-5)
    # A setting added later, at its earlier behaviour, leaves the fingerprint of older records as it was.
    config = resolve_config(registry, TINY)
    earlier = {k: v for k, v in config.to_dict().items() if k not in ("drh_views", "solver", "seed")}
    assert settings_fingerprint(config) == result_fingerprint(earlier)
    assert settings_fingerprint(resolve_config(registry, TINY, {"drh_views": "sum"})) != result_fingerprint(earlier)


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
    from dscsc_core.training.model import DSCSCNetwork

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


def test_moving_a_relu_autoencoder_to_another_pixel_scale_is_exact(registry):
    from dscsc_core.training.model import DSCSCNetwork

    torch.manual_seed(0)
    parts = registry.create("encoder", "conv3", arch="orl").build((1, 32, 32))
    network = DSCSCNetwork(parts, 16, 8)
    x = torch.rand(5, 1, 32, 32)
    with torch.no_grad():
        before = network.decoder(network.encoder(x)), network.head(network.encoder(x))
        network.change_pixel_scale(255.0)
        after = network.decoder(network.encoder(255.0 * x)), network.head(network.encoder(255.0 * x))
    torch.testing.assert_close(after[0], 255.0 * before[0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(after[1], 255.0 * before[1], rtol=1e-5, atol=1e-4)


def test_stage1_at_its_own_pixel_scale_then_stage2_at_input_scale(registry):
    unit = _run(registry, input_scale=1.0)
    moved = _run(registry, input_scale=4.0, pretrain_input_scale=1.0)
    stage1 = [r.losses for r in unit.history if r.stage == "pretrain"]
    assert [r.losses for r in moved.history if r.stage == "pretrain"] == stage1  # the same Stage I
    # Stage II starts from the moved network: its first reconstruction is 4² times the unit one's.
    assert _losses(moved, "finetune", 1)["drh"] == pytest.approx(16 * _losses(unit, "finetune", 1)["drh"], rel=1e-3)
    assert moved.summary["config"]["pretrain_input_scale"] == 1.0


def test_an_encoder_that_cannot_change_scale_is_refused_before_training(registry):
    from dscsc_core import AutoEncoderParts, Encoder, hookimpl
    from dscsc_core.errors import ConfigError
    from dscsc_core.plugin_api.registry import PluginLoader

    class NormalisedEncoder(Encoder):
        name = "normalised"

        def make(self, input_shape):
            size = int(torch.tensor(input_shape).prod())
            return AutoEncoderParts(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LayerNorm(size)),
                                    torch.nn.Unflatten(1, input_shape), size)

    class Plugin:
        @hookimpl
        def dscsc_register_encoders(self, register):
            register(NormalisedEncoder)

    loader = PluginLoader(strict=True)
    loader.load_entry_points()
    loader.add_plugin(Plugin(), "normalised-plugin")
    local = loader.collect()
    with pytest.raises(ConfigError, match="cannot move from pretrain_input_scale"):
        _run(local, encoder="normalised", input_scale=2.0, pretrain_input_scale=1.0)
    assert _run(local, encoder="normalised", input_scale=2.0).coef.shape == (30, 30)


def test_s2convscn_self_supervision_adds_its_two_terms(registry):
    from dscsc_plugins.objectives import label_disagreement

    result = _run(registry, beta=0.0, epochs=4, clusterer="spectral", objective="s2convscn",
                  params={"objective": {"every": 2, "agreement_weight": 2.0, "classifier_weight": 0.5}})
    first = _losses(result, "finetune", 1)
    expected = first["drh"] + 30 * first["sem"] + 2.0 * first["agreement"] + 0.5 * first["pseudo"]
    assert first["total"] == pytest.approx(expected, rel=1e-5)
    assert first["agreement"] > 0 and first["pseudo"] > 0
    # Off by default: no such terms, and only pairs the labels put apart count.
    assert "agreement" not in _losses(_run(registry, beta=0.0), "finetune", 1)
    coef = torch.tensor([[0.0, 1.0, -2.0], [3.0, 0.0, 4.0], [-5.0, 6.0, 0.0]])
    assert label_disagreement(coef, torch.tensor([0, 0, 1])).item() == 2 + 4 + 5 + 6


def test_s2convscn_relabels_every_e_epochs_with_the_runs_clusterer(registry, monkeypatch):
    from dscsc_plugins.clusterers import SpectralClusterer

    calls = []
    original = SpectralClusterer.cluster

    def counting(self, coef, n_clusters, seed):
        calls.append(coef.shape)
        return original(self, coef, n_clusters, seed)

    monkeypatch.setattr(SpectralClusterer, "cluster", counting)
    _run(registry, beta=0.0, epochs=5, clusterer="spectral", objective="s2convscn",
         params={"objective": {"every": 2, "agreement_weight": 1.0}})
    assert len(calls) == 3 + 1  # epochs 1, 3, 5 during training, then the final clustering


def test_a_dead_start_is_redrawn_and_counted(registry, monkeypatch):
    """An autoencoder whose encoder gets no gradient is drawn again from the same seeded generator."""
    import dscsc_core.training.trainer as trainer

    alive = trainer._encoder_gets_gradient
    verdicts = iter([False, True])
    monkeypatch.setattr(trainer, "_encoder_gets_gradient", lambda network, x, batch_size: next(verdicts))
    redrawn = _run(registry, beta=0.0)
    monkeypatch.setattr(trainer, "_encoder_gets_gradient", alive)
    first_draw = _run(registry, beta=0.0)
    assert redrawn.summary["dead_starts"] == 1 and first_draw.summary["dead_starts"] == 0
    assert not np.array_equal(redrawn.coef, first_draw.coef)  # the second draw trained, not the first
    monkeypatch.setattr(trainer, "_encoder_gets_gradient", lambda network, x, batch_size: False)
    with pytest.raises(DataError, match="starts dead on these images in 10 draws"):
        _run(registry, beta=0.0)


@pytest.mark.parametrize("batch_size", [6, 4, 1])
def test_an_encoder_with_every_relu_off_gets_no_gradient(registry, batch_size):
    from dscsc_core.training.model import DSCSCNetwork
    from dscsc_core.training.trainer import _encoder_gets_gradient

    network = DSCSCNetwork(registry.create("encoder", "conv1").build((1, 8, 8)), 16, 8)
    x = torch.rand(6, 1, 8, 8)
    assert _encoder_gets_gradient(network, x, batch_size)
    with torch.no_grad():
        for name, parameter in network.encoder.named_parameters():
            if name.endswith("bias"):
                parameter.fill_(-1e6)  # every encoder unit off: features 0, nothing flows back
    assert not _encoder_gets_gradient(network, x, batch_size)


def test_stage1_trains_at_its_own_learning_rate_and_stage2_at_lr(registry):
    def drh(result, stage, epoch):
        return _losses(result, stage, epoch)["drh"]

    frozen = _run(registry, pretrain_objective="drh", pretrain_lr=0.0, pretrain_epochs=3)
    assert drh(frozen, "pretrain", 1) == drh(frozen, "pretrain", 3)  # a zero Stage I rate leaves the autoencoder
    assert drh(frozen, "finetune", 2) != drh(frozen, "finetune", 1)  # Stage II still trains at lr
    moving = _run(registry, pretrain_objective="drh", pretrain_epochs=3)
    assert drh(moving, "pretrain", 3) < drh(moving, "pretrain", 1)
    assert frozen.summary["config"]["pretrain_lr"] == 0.0 and moving.summary["config"]["pretrain_lr"] is None


def test_stage1_mini_batches_take_one_step_per_batch_and_report_the_whole_pass(registry, monkeypatch):
    steps = []
    original = torch.optim.Adam.step
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, *a, **k: steps.append(1) or original(self, *a, **k))
    whole = _run(registry, pretrain_objective="drh", beta=0.0, pretrain_epochs=2, epochs=0)
    assert len(steps) == 2  # DSC-Net's Stage I: one full-batch step per epoch
    steps.clear()
    batched = _run(registry, pretrain_objective="drh", beta=0.0, pretrain_epochs=2, epochs=0, pretrain_batch_size=8)
    assert len(steps) == 2 * 4  # 30 samples in batches of 8, 8, 8 and 6, each epoch
    # The epoch's reported loss is a whole-data sum, comparable to the full-batch one (same starting weights).
    first_whole, first_batched = _losses(whole, "pretrain", 1)["drh"], _losses(batched, "pretrain", 1)["drh"]
    assert first_batched < first_whole * 1.5 and first_batched > first_whole * 0.2
    assert _losses(batched, "pretrain", 2)["drh"] < first_batched
    steps.clear()
    _run(registry, pretrain_objective="drh", beta=0.0, pretrain_epochs=2, epochs=0, pretrain_batch_size=64)
    assert len(steps) == 2  # a batch as large as the data is the full batch


def test_bf16_precision_runs_the_autoencoder_in_bf16_and_keeps_c_and_the_losses_fp32(registry, monkeypatch):
    from dscsc_core.run.identity import settings_fingerprint
    from dscsc_core.training.model import DSCSCNetwork, SelfExpression
    from dscsc_core.training.trainer import Trainer

    seen: dict[str, set] = {"encoder": set(), "decoder": set()}
    built = DSCSCNetwork.__init__

    def recording(self, parts, *args):
        built(self, parts, *args)
        for name in ("encoder", "decoder"):
            convolutions = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
            first = next(m for m in getattr(self, name).modules() if isinstance(m, convolutions))
            first.register_forward_hook(lambda module, inputs, out, name=name: seen[name].add(out.dtype))

    monkeypatch.setattr(DSCSCNetwork, "__init__", recording)
    coefficients, encode = SelfExpression.coefficients, Trainer._encode

    def noted_coefficients(self):
        coef = coefficients(self)
        seen.setdefault("c and z", set()).add(coef.dtype)
        return coef

    def noted_views(self, *args, **kwargs):
        views = encode(self, *args, **kwargs)
        seen.setdefault("c and z", set()).add(views.z.dtype)
        return views

    monkeypatch.setattr(SelfExpression, "coefficients", noted_coefficients)
    monkeypatch.setattr(Trainer, "_encode", noted_views)
    result = _run(registry, precision="bf16")
    assert seen.pop("c and z") == {torch.float32}  # C and the features it expresses stay fp32
    # The training steps run the layers in bf16 (the start-up check and read-outs may stay fp32).
    assert torch.bfloat16 in seen["encoder"] and torch.bfloat16 in seen["decoder"]
    assert np.isfinite(result.coef).all()
    assert all(np.isfinite(value) for record in result.history for value in record.losses.values())
    seen = {"encoder": set(), "decoder": set()}
    _run(registry)
    assert seen == {"encoder": {torch.float32}, "decoder": {torch.float32}, "c and z": {torch.float32}}
    # fp32 is the behaviour every stored run had: it stays out of fingerprints, bf16 does not.
    config = resolve_config(registry, TINY)
    assert settings_fingerprint(resolve_config(registry, TINY, {"precision": "fp32"})) == settings_fingerprint(config)
    assert settings_fingerprint(resolve_config(registry, TINY, {"precision": "bf16"})) != settings_fingerprint(config)


def test_schs_share_of_the_encoders_gradient_is_measured_without_moving_any_number(registry):
    measured = _run(registry, epochs=4, sch_share_every=2)
    plain = _run(registry, epochs=4, sch_share_every=0)
    assert (measured.coef == plain.coef).all()
    assert [r.losses for r in measured.history] == [r.losses for r in plain.history]
    shares = {r.epoch: r.diagnostics for r in measured.history if r.stage == "finetune"}
    assert shares[1] is None and shares[3] is None
    assert set(shares[2]) == set(shares[4]) == {"sch_share", "encoder_moved"}
    assert all(r.diagnostics is None for r in plain.history)
    # Where SCH is the whole loss the share is 1; where it is a speck of it, a speck.
    dominant = _run(registry, epochs=2, sch_share_every=1, beta=1e9).history[-1].diagnostics["sch_share"]
    negligible = _run(registry, epochs=2, sch_share_every=1, beta=1e-9).history[-1].diagnostics["sch_share"]
    assert dominant == pytest.approx(1.0, abs=1e-3) and negligible < 1e-6
    # No SCH, no share to measure; how far the encoder moved is measured all the same.
    assert set(_run(registry, epochs=2, beta=0.0).history[-1].diagnostics) == {"encoder_moved"}


def test_metrics_csv_carries_the_sch_share_where_it_was_measured(registry, tmp_path):
    import csv

    from dscsc_core.run.outputs import write_result

    write_result(_run(registry, epochs=4, sch_share_every=2), tmp_path)
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [row["sch_share"] != "" for row in rows if row["stage"] == "finetune"] == [False, True, False, True]
