"""Issue 48's Stage II options: eq. 4 sparing the miner's neighbours, structural negatives by class size, β set by
SCH's gradient ratio, the head and C warm-ups, C's own learning rate, and how far the encoder moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse

from dscsc_core import ConfigError, DataError
from dscsc_core.errors import ParameterError
from dscsc_core.plugin_api.params import RunContext
from dscsc_core.run.outputs import CHECKPOINT
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.checkpoint import Checkpoint, TrainingInterrupted
from dscsc_core.training.losses import positive_log_likelihood, sch_loss

TINY = {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 2, "epochs": 2, "sch_share_every": 1,
        "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}}}


def _run(registry, **overrides):
    return execute(prepare(resolve_config(registry, TINY, overrides), registry))


def _residual(result) -> float:
    z = torch.as_tensor(result.embedding, dtype=torch.float64)
    coef = result.coef.toarray() if sparse.issparse(result.coef) else result.coef
    return float((z - torch.as_tensor(coef).T @ z).pow(2).sum())


# ------------------------------------------------------------------ eq. 4's denominator
def test_eq4_over_negatives_is_a_softmax_over_the_anchor_and_its_negatives_only():
    generator = torch.Generator().manual_seed(0)
    h, h_aug = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    negatives = torch.ones(5, 5, dtype=torch.bool)
    negatives[0, 1] = negatives[0, 2] = False  # anchor 0 spares samples 1 and 2
    logits = torch.nn.functional.normalize(h_aug, dim=1) @ torch.nn.functional.normalize(h, dim=1).T / 0.5
    expected = logits[0, 0] - torch.logsumexp(logits[0, [0, 3, 4]], dim=0)
    spared = positive_log_likelihood(h, h_aug, 0.5, negatives)
    assert spared[0] == pytest.approx(float(expected), abs=1e-6)
    printed = positive_log_likelihood(h, h_aug, 0.5)
    assert torch.allclose(spared[1:], printed[1:]) and spared[0] > printed[0]
    everyone = torch.ones(5, 5, dtype=torch.bool)
    assert sch_loss(h, h_aug, everyone, 0.5, "negatives") == pytest.approx(float(sch_loss(h, h_aug, everyone, 0.5)))
    with pytest.raises(ValueError, match="denominator must be one of all, negatives"):
        sch_loss(h, h_aug, everyone, 0.5, "some")


def test_a_run_with_eq4_over_negatives_has_a_smaller_sch_loss(registry):
    printed, spared = _run(registry, miner="knn"), _run(registry, miner="knn", sch_denominator="negatives")
    first = [r.losses for r in printed.history if r.stage == "finetune"][0]
    spared_first = [r.losses for r in spared.history if r.stage == "finetune"][0]
    assert spared_first["sch"] < first["sch"]  # fewer terms in each denominator: a smaller loss
    with pytest.raises(ParameterError, match="sch_denominator.*must be one of all, negatives"):
        resolve_config(registry, TINY, {"sch_denominator": "some"})


# ------------------------------------------------------------------ structural negatives
def test_classmates_spares_a_class_worth_of_nearest_neighbours(registry):
    miner = registry.create("miner", "classmates")
    miner.check_context(RunContext(n_samples=20, n_clusters=4, input_shape=(1, 8, 8)))
    z = torch.randn(20, 6, generator=torch.Generator().manual_seed(1))
    negatives = miner(z)
    assert (negatives.sum(1) == 20 - 1 - 4).all()  # n/K - 1 = 4 spared, and the anchor itself
    assert (miner(z[:8]).sum(1) == 8 - 1 - 1).all()  # a batch of 8: two a class, one spared
    coef = torch.zeros(20, 20)
    coef[0, 5:9] = 1.0  # sample 0 expresses 5..8 (and they express nothing)
    by_coef = registry.create("miner", "classmates", by="coef", clusters=4)(z, coef)
    assert not by_coef[0, 5:9].any() and by_coef[0, 9:].all()


def test_classmates_without_a_class_count_says_what_to_set(registry):
    with pytest.raises(DataError, match="set its parameter 'clusters'"):
        registry.create("miner", "classmates")(torch.randn(6, 3))


def test_a_run_gives_classmates_its_number_of_clusters(registry):
    result = _run(registry, miner="classmates", sch_denominator="negatives")
    assert np.isfinite(result.coef).all() and "sch" in result.history[-1].losses


# ------------------------------------------------------------------ β by SCH's gradient ratio
def test_beta_is_set_by_the_gradient_ratio_and_trains_as_that_beta_given(registry):
    found = _run(registry, sch_gradient_ratio=0.5)
    beta = found.summary["stage2_measures"]["beta"]
    first = next(r for r in found.history if r.stage == "finetune")
    assert first.diagnostics["beta"] == beta and beta > 0
    doubled = _run(registry, sch_gradient_ratio=1.0).summary["stage2_measures"]["beta"]
    assert doubled == pytest.approx(2 * beta, rel=1e-9)
    # Where Stage I does not train SCH (its β is the preset's), the run is the one with that β given.
    found_after_drh = _run(registry, sch_gradient_ratio=0.5, pretrain_objective="drh")
    given = _run(registry, beta=found_after_drh.summary["stage2_measures"]["beta"], pretrain_objective="drh")
    assert np.array_equal(given.coef, found_after_drh.coef)
    assert [r.losses for r in given.history] == [r.losses for r in found_after_drh.history]
    # Stage I kept the β given (the preset's): only Stage II's is set by the ratio.
    assert [r.losses for r in found.history if r.stage == "pretrain"] == \
        [r.losses for r in _run(registry).history if r.stage == "pretrain"]


@pytest.mark.parametrize("setting", [{"sch_gradient_ratio": 1.0}, {"head_warmup_epochs": 2}])
def test_head_options_need_sch_on(registry, setting):
    with pytest.raises(ConfigError, match=f"{next(iter(setting))}' acts on the contrastive head.*'beta' > 0"):
        _run(registry, beta=0.0, **setting)


def test_a_run_resumed_in_stage_two_keeps_the_beta_it_found(registry, tmp_path):
    config = resolve_config(registry, TINY, {"sch_gradient_ratio": 0.5, "epochs": 3})
    full = execute(prepare(config, registry))
    calls = iter(range(1, 100))
    with pytest.raises(TrainingInterrupted):  # stopped after Stage II's first epoch (Stage I has 2)
        execute(prepare(config, registry), checkpoint_dir=tmp_path, should_stop=lambda: next(calls) == 3)
    state = Checkpoint.load(tmp_path / CHECKPOINT)
    assert (state.stage, state.epoch) == ("finetune", 1)
    resumed = execute(prepare(config, registry), checkpoint_dir=tmp_path, resume=state)
    assert resumed.summary["stage2_measures"]["beta"] == full.summary["stage2_measures"]["beta"]
    assert [r.losses for r in resumed.history] == [r.losses for r in full.history]
    assert np.array_equal(resumed.coef, full.coef)


# ------------------------------------------------------------------ warm-ups and C's learning rate
def test_the_head_warm_up_moves_the_head_alone(registry):
    plain, warm = _run(registry, epochs=0), _run(registry, epochs=0, head_warmup_epochs=20)
    assert np.array_equal(plain.coef, warm.coef) and np.array_equal(plain.embedding, warm.embedding)
    untrained, trained = (next(r.losses["sch"] for r in run.history if r.stage == "finetune")
                          for run in (_run(registry, epochs=1), _run(registry, epochs=1, head_warmup_epochs=20)))
    assert trained < untrained  # SCH starts Stage II from a trained head


@pytest.mark.parametrize("path", [{}, {"coef_support": 10, "stage2_batch_size": 15, "pretrain_objective": "drh",
                                   "clusterer": "sparse-spectral"}])
def test_the_c_warm_up_fits_c_to_the_fixed_features(registry, path):
    if path:
        path = {**path, "params": {**TINY["params"], "clusterer": {"k": 5}}}
    plain, warm = _run(registry, epochs=0, **path), _run(registry, epochs=0, coef_warmup_epochs=30, **path)
    assert np.array_equal(plain.embedding, warm.embedding)  # the encoder did not move
    assert _residual(warm) < 0.75 * _residual(plain)


def test_c_has_its_own_learning_rate(registry):
    start = _run(registry, epochs=0)
    frozen = _run(registry, coef_lr=0.0)
    assert np.array_equal(frozen.coef, start.coef) and not np.array_equal(frozen.embedding, start.embedding)
    assert np.array_equal(_run(registry, coef_lr=1e-3).coef, _run(registry).coef)  # lr's value: the same steps


def test_how_far_the_encoder_moved_is_measured(registry):
    result = _run(registry, epochs=3)
    moved = [r.diagnostics["encoder_moved"] for r in result.history if r.stage == "finetune"]
    assert 0 < moved[0] < moved[-1] and result.summary["stage2_measures"]["encoder_moved"] == moved[-1]
    assert _run(registry, epochs=0).summary["stage2_measures"]["encoder_moved"] == 0.0


def test_the_scalable_path_measures_schs_share_on_an_epochs_first_step(registry):
    scalable = {"coef_support": 10, "stage2_batch_size": 15, "pretrain_objective": "drh",
                "clusterer": "sparse-spectral", "params": {**TINY["params"], "clusterer": {"k": 5}}}
    measured, plain = _run(registry, **scalable), _run(registry, **scalable, sch_share_every=0)
    assert [r.losses for r in measured.history] == [r.losses for r in plain.history]
    shares = [r.diagnostics["sch_share"] for r in measured.history if r.stage == "finetune"]
    assert len(shares) == 2 and all(share > 0.5 for share in shares)  # β = 10 on tiny images: SCH leads
    negligible = _run(registry, **scalable, beta=1e-9).history[-1].diagnostics["sch_share"]
    assert 0 < negligible < 1e-6
