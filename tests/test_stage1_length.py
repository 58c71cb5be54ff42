"""benchmarks/stage1_length.py: the reconstruction at each Stage I length, with or without Stage II."""

from __future__ import annotations

import dataclasses

from conftest import benchmark_script

from dscsc_core.run.pipeline import prepare, resolve_config


def _run(registry):
    settings = {"dataset": "synthetic", "params": {"dataset": {"subspaces": 3, "per_subspace": 10}},
                "pretrain_epochs": 4, "epochs": 2, "seed": 0, "device": "cpu"}
    return prepare(resolve_config(registry, settings), registry)


def test_stage1_only_reads_the_reconstruction_at_each_length_and_scores_nothing(registry):
    stage1_length = benchmark_script("stage1_length")
    measure = stage1_length.measure
    only = measure(_run(registry), [2, 4], stage1_only=True)
    scored = measure(_run(registry), [2, 4])
    assert list(only) == [2, 4]
    assert all(row[2] is None for row in only.values())
    assert all(0.0 <= row[2]["acc"] <= 1.0 for row in scored.values())
    # The same seed gives the same Stage I either way: skipping Stage II changes no reconstruction.
    assert [row[0] for row in only.values()] == [row[0] for row in scored.values()]
    # Each length's figure is the loss of that epoch of a plain Stage I.
    run = _run(registry)
    config = dataclasses.replace(run.config.training(), pretrain_epochs=4, epochs=0)
    history = stage1_length._trainer(run, config).fit(run.data.images, run.n_clusters).history
    assert [only[2][0], only[4][0]] == [history[1].losses["drh"], history[3].losses["drh"]]
