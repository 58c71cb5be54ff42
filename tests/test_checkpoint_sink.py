"""execute(run, checkpoint_sink=...): every checkpoint a run makes, handed to the caller, the run unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from dscsc_core.run.outputs import CHECKPOINT
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.checkpoint import Checkpoint, TrainingInterrupted

SETTINGS = {"dataset": "synthetic", "params": {"dataset": {"subspaces": 3, "per_subspace": 10}},
            "pretrain_epochs": 4, "epochs": 4, "seed": 1, "checkpoint_every": 2, "device": "cpu"}


def _run(registry, **settings):
    return prepare(resolve_config(registry, SETTINGS, settings), registry)


def _same_result(a, b) -> None:
    assert np.array_equal(a.coef, b.coef)
    assert np.array_equal(a.labels, b.labels)
    assert a.metrics == b.metrics
    assert [(r.stage, r.epoch, r.losses) for r in a.history] == [(r.stage, r.epoch, r.losses) for r in b.history]


def test_the_sink_gets_every_checkpoint_and_the_run_is_unchanged(registry):
    plain = execute(_run(registry))
    kept: list[Checkpoint] = []
    sunk = execute(_run(registry), checkpoint_sink=kept.append)
    _same_result(plain, sunk)
    assert [(state.stage, state.epoch) for state in kept] == \
        [("pretrain", 2), ("pretrain", 4), ("finetune", 2), ("finetune", 4)]
    # Each is a copy of the run at its epoch, not the live network: resuming from the first ends as the run.
    first, last = kept[0], kept[-1]
    assert not all(np.array_equal(first.network[key], last.network[key]) for key in first.network
                   if key in last.network)
    _same_result(plain, execute(_run(registry), resume=first))


def test_the_sink_follows_checkpoint_every(registry):
    kept: list[Checkpoint] = []
    execute(_run(registry, checkpoint_every=3), checkpoint_sink=kept.append)
    assert [(state.stage, state.epoch) for state in kept] == [("pretrain", 3), ("finetune", 3)]
    kept.clear()
    execute(_run(registry, checkpoint_every=0), checkpoint_sink=kept.append)
    assert kept == []


def test_a_stop_request_hands_its_checkpoint_to_the_sink_and_the_folder(registry, tmp_path):
    kept: list[Checkpoint] = []
    calls = iter(range(1, 100))
    with pytest.raises(TrainingInterrupted, match="checkpoint saved"):
        execute(_run(registry), checkpoint_dir=tmp_path, checkpoint_sink=kept.append,
                should_stop=lambda: next(calls) == 3)
    assert [(state.stage, state.epoch) for state in kept] == [("pretrain", 2), ("pretrain", 3)]
    on_disk = Checkpoint.load(tmp_path / CHECKPOINT)
    assert (on_disk.stage, on_disk.epoch, on_disk.fingerprint) == ("pretrain", 3, kept[-1].fingerprint)
    _same_result(execute(_run(registry)), execute(_run(registry), resume=kept[-1]))
