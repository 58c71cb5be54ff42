"""A finished Stage I is stored once per (Stage I settings, data, seed) and reused by every Stage II that
shares it, ending exactly where a run that trained Stage I itself ends."""

from __future__ import annotations

import numpy as np

from dscsc_core.run.identity import stage1_fingerprint
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.checkpoint import StageOne

TINY = {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 3, "epochs": 3,
        "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}}}


def _prepared(registry, **overrides):
    return prepare(resolve_config(registry, TINY, overrides), registry)


def test_reused_stage1_gives_the_same_result_as_training_it(registry, tmp_path):
    fresh = execute(_prepared(registry))
    stored = execute(_prepared(registry), stage1_cache=tmp_path)
    reused = execute(_prepared(registry), stage1_cache=tmp_path)
    assert not stored.summary["stage1"]["reused"] and reused.summary["stage1"]["reused"]
    assert len(list(tmp_path.glob("stage1-*.pt"))) == 1
    for other in (stored, reused):
        np.testing.assert_array_equal(other.coef, fresh.coef)
        np.testing.assert_array_equal(other.labels, fresh.labels)
        assert [r.losses for r in other.history] == [r.losses for r in fresh.history]
    assert reused.summary["timings"]["pretrain_s"] == 0.0
    assert reused.summary["stage1"]["stored_seconds"] > 0


def test_stage2_only_settings_share_stage1_and_stage1_settings_do_not(registry):
    base = stage1_fingerprint(_prepared(registry, pretrain_objective="drh"))
    # Nothing of SCH or augmentation enters a "drh" Stage I; Stage II settings never do.
    for same in ({"alpha": 3.0}, {"epochs": 9}, {"miner": "none"}, {"augment": "none"}, {"beta": 0.0},
                 {"params": {"clusterer": {"power": 2.0}}}, {"coef_diagonal": "free"}, {"head_dim": 8},
                 {"head_hidden": 16}):
        assert stage1_fingerprint(_prepared(registry, pretrain_objective="drh", **same)) == base, same
    # Stage I's own learning rate is left out while it follows lr, so stored Stage I runs of older code still match.
    assert stage1_fingerprint(_prepared(registry, pretrain_objective="drh", pretrain_lr=None)) == base
    assert stage1_fingerprint(_prepared(registry, pretrain_objective="drh", pretrain_batch_size=0)) == base
    assert stage1_fingerprint(_prepared(registry, pretrain_objective="drh", precision="fp32")) == base
    for different in ({"seed": 1}, {"lr": 0.01}, {"pretrain_lr": 0.01}, {"pretrain_epochs": 4}, {"input_scale": 2.0},
                      {"pretrain_batch_size": 8}, {"precision": "bf16"},
                      {"params": {"dataset": {"data_seed": 1}}}, {"params": {"encoder": {"channels": "8"}}}):
        assert stage1_fingerprint(_prepared(registry, pretrain_objective="drh", **different)) != base, different
    # An eq. 10 Stage I trains SCH on augmented views: those settings matter there.
    paper = stage1_fingerprint(_prepared(registry))
    assert paper != base
    assert stage1_fingerprint(_prepared(registry, params={"miner": {"k": 2}})) != paper
    assert stage1_fingerprint(_prepared(registry, beta=1.0)) != paper
    assert stage1_fingerprint(_prepared(registry, head_dim=8)) != paper


def test_a_damaged_cache_entry_is_trained_again(registry, tmp_path):
    run = _prepared(registry)
    execute(run, stage1_cache=tmp_path)
    (entry,) = tmp_path.glob("stage1-*.pt")
    entry.write_bytes(b"not a checkpoint")
    again = execute(_prepared(registry), stage1_cache=tmp_path)
    assert not again.summary["stage1"]["reused"]
    assert execute(_prepared(registry), stage1_cache=tmp_path).summary["stage1"]["reused"]


def test_a_drh_stage1_is_shared_across_head_sizes_and_ends_as_training_it(registry, tmp_path):
    # DSCSC and its DSC-Net recipe differ in the head (COIL20, Yale B); a "drh" Stage I never touches it.
    own = {"pretrain_objective": "drh", "head_dim": 8}
    fresh = execute(_prepared(registry, **own))
    execute(_prepared(registry, pretrain_objective="drh", head_dim=4, head_hidden=16), stage1_cache=tmp_path)
    reused = execute(_prepared(registry, **own), stage1_cache=tmp_path)
    assert reused.summary["stage1"]["reused"]
    np.testing.assert_array_equal(reused.coef, fresh.coef)  # Stage II's augmentation drew the same numbers too
    assert [r.losses for r in reused.history] == [r.losses for r in fresh.history]


def test_a_stage1_with_another_head_and_redrawn_weights_is_trained_again(registry, tmp_path):
    # A redraw (a dead start) follows the head of its own size, so its weights are not this run's draw.
    execute(_prepared(registry, pretrain_objective="drh", head_dim=4), stage1_cache=tmp_path)
    (entry,) = tmp_path.glob("stage1-*.pt")
    stored = StageOne.load(entry)
    stored.dead_starts = 1
    stored.save(entry)
    own = {"pretrain_objective": "drh", "head_dim": 8}
    again = execute(_prepared(registry, **own), stage1_cache=tmp_path)
    assert not again.summary["stage1"]["reused"]
    np.testing.assert_array_equal(again.coef, execute(_prepared(registry, **own)).coef)


def test_a_minibatch_drh_stage1_shared_across_head_sizes_ends_as_training_it(registry, tmp_path):
    own = {"pretrain_objective": "drh", "head_dim": 8, "pretrain_batch_size": 8}
    fresh = execute(_prepared(registry, **own))
    execute(_prepared(registry, pretrain_objective="drh", head_dim=4, head_hidden=16, pretrain_batch_size=8),
            stage1_cache=tmp_path)
    reused = execute(_prepared(registry, **own), stage1_cache=tmp_path)
    assert reused.summary["stage1"]["reused"]
    np.testing.assert_array_equal(reused.coef, fresh.coef)


def test_a_minibatch_drh_stage1_beside_another_head_is_the_default_heads(registry):
    # The recipe (default head) and DSCSC (COIL20: 256 wide) train one Stage I, so their rows pair exactly.
    batches = {"pretrain_objective": "drh", "pretrain_batch_size": 8}
    default = execute(_prepared(registry, **batches))
    other = execute(_prepared(registry, head_dim=8, head_hidden=16, **batches))
    stage1 = [[r.losses for r in run.history if r.stage == "pretrain"] for run in (default, other)]
    assert stage1[0] == stage1[1] and len(stage1[0]) == TINY["pretrain_epochs"]


def test_a_default_head_run_reusing_a_stage1_stored_beside_another_head_ends_as_training_it(registry, tmp_path):
    batches = {"pretrain_objective": "drh", "pretrain_batch_size": 8}
    fresh = execute(_prepared(registry, **batches))
    execute(_prepared(registry, head_dim=8, **batches), stage1_cache=tmp_path)
    reused = execute(_prepared(registry, **batches), stage1_cache=tmp_path)
    assert reused.summary["stage1"]["reused"]
    np.testing.assert_array_equal(reused.coef, fresh.coef)
    assert [r.losses for r in reused.history] == [r.losses for r in fresh.history]
