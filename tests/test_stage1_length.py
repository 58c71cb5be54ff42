"""benchmarks/stage1_length.py: the reconstruction at each Stage I length, with or without Stage II, from one
Stage I through the run pipeline."""

from __future__ import annotations

import pytest
from conftest import benchmark_script

from dscsc_core.run.pipeline import execute, prepare, resolve_config

stage1_length = benchmark_script("stage1_length")

SETTINGS = {"dataset": "synthetic", "params": {"dataset": {"subspaces": 3, "per_subspace": 10}},
            "pretrain_epochs": 4, "epochs": 2, "seed": 0, "device": "cpu"}


def _fresh(registry, pretrain_epochs: int):
    """A plain run of SETTINGS with that Stage I length, as `dscsc run` would train it."""
    return execute(prepare(resolve_config(registry, SETTINGS, {"pretrain_epochs": pretrain_epochs}), registry))


def test_stage1_only_reads_the_reconstruction_at_each_length_and_scores_nothing(registry):
    only = stage1_length.measure(registry, [SETTINGS], [2, 4], stage1_only=True)
    scored = stage1_length.measure(registry, [SETTINGS], [2, 4])
    assert list(only) == [2, 4]
    assert all(row[2] is None for row in only.values())
    assert all(0.0 <= row[2]["acc"] <= 1.0 for row in scored.values())
    # The same seed gives the same Stage I either way: skipping Stage II changes no reconstruction.
    assert [row[0] for row in only.values()] == [row[0] for row in scored.values()]
    # Each length's figure is the loss of that epoch of a plain Stage I.
    history = _fresh(registry, 4).history
    assert [only[2][0], only[4][0]] == [history[1].losses["drh"], history[3].losses["drh"]]


def _watch(monkeypatch) -> list[tuple[str, int]]:
    """Every epoch the script's runs report, in order."""
    seen = []

    def watched(run, on_epoch=None, **kwargs):
        def report(epoch_report):
            seen.append((epoch_report.stage, epoch_report.epoch))
            if on_epoch is not None:
                on_epoch(epoch_report)
        return execute(run, on_epoch=report, **kwargs)

    monkeypatch.setattr(stage1_length, "execute", watched)
    return seen


def test_each_length_scores_what_a_fresh_run_of_that_length_scores(registry, monkeypatch):
    """One Stage I kept at several lengths is the same computation as one run per length."""
    seen = _watch(monkeypatch)
    rows = stage1_length.measure(registry, [SETTINGS], [1, 3])
    # One Stage I of the longest length, then each length's Stage II alone.
    assert seen == [("pretrain", 1), ("pretrain", 2), ("pretrain", 3)] + [("finetune", 1), ("finetune", 2)] * 2
    for length in (1, 3):
        fresh = _fresh(registry, length)
        assert rows[length][2] == fresh.summary["metrics"]
        assert rows[length][0] == fresh.history[length - 1].losses["drh"]


def test_stage1_stops_once_it_has_every_length(registry, monkeypatch):
    seen = _watch(monkeypatch)
    snapshots, _ = stage1_length.stage1_snapshots(registry, [SETTINGS, {"epochs": 50}], [2, 4])
    assert {length: (state.stage, state.epoch) for length, state in snapshots.items()} == \
        {2: ("pretrain", 2), 4: ("pretrain", 4)}
    assert seen == [("pretrain", epoch) for epoch in range(1, 5)]  # no Stage II epoch ran


def test_a_stage1_that_ends_early_is_reported(registry):
    # A plateau rule that always fires ends Stage I after its patience, before the lengths asked for.
    plateau = {"pretrain_tol": 1.0, "pretrain_patience": 1}
    with pytest.raises(SystemExit, match="Stage I stopped before epoch 4"):
        stage1_length.stage1_snapshots(registry, [SETTINGS, plateau], [4])
