"""How long must Stage I (the autoencoder) train? ACC of a preset against its Stage I length.

Usage:
    python benchmarks/stage1_length.py --preset dscnet-orl --lengths 500,1000,2000,4000,8000 --seeds 3
    python benchmarks/stage1_length.py --preset dscnet-orl --lengths 500,1000,2000 --set pretrain_lr=0.003
    python benchmarks/stage1_length.py --preset dscnet-yaleb --lengths 400,1000,2000 --seeds 1 --stage1-only

Stage I runs once per seed to the longest length, keeping a checkpoint at every length asked for;
each length's Stage II then starts from its checkpoint. That is the same computation as a fresh run
with ``pretrain_epochs`` = that length (same seed, same random state), at the cost of one Stage I.
Prints, per length, the Stage I reconstruction loss, its relative improvement over the last 10 %
of the steps (what a plateau rule would see) and dsc-post ACC/NMI mean ± std over the seeds.
``--stage1-only`` skips Stage II and the clustering: the label-free part alone, for datasets whose
Stage II is too long to repeat at every length (Yale B).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import math
import platform
import statistics
import time
import tomllib

import torch

from dscsc_core.metrics import clustering_scores
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import prepare, resolve_config
from dscsc_core.run.recipe import Recipe
from dscsc_core.run.threads import use_cpu_threads
from dscsc_core.training.checkpoint import Checkpoint
from dscsc_core.training.lifecycle import Checkpointing
from dscsc_core.training.trainer import Trainer


def stage1_snapshots(run, lengths: list[int]) -> tuple[dict[int, Checkpoint], float]:
    """Stage I to max(lengths), keeping a checkpoint at each length; returns them and the Stage I seconds."""
    snapshots: dict[int, Checkpoint] = {}
    config = dataclasses.replace(run.config.training(), pretrain_epochs=max(lengths), epochs=0,
                                 checkpoint_every=math.gcd(*lengths))

    def keep(state: Checkpoint) -> None:
        if state.stage == "pretrain" and state.epoch in lengths:
            snapshots[state.epoch] = copy.deepcopy(state)  # the state dicts reference live tensors

    trainer = _trainer(run, config, checkpointing=Checkpointing(save=keep, every=config.checkpoint_every))
    start = time.perf_counter()
    trainer.fit(run.data.images, run.n_clusters)
    return snapshots, time.perf_counter() - start


def _trainer(run, config, **kwargs) -> Trainer:
    parts = run.components
    return Trainer(config, parts["encoder"], parts["augment"], parts["miner"], parts["regularizer"],
                   device=run.device, **kwargs)


def finish(run, snapshot: Checkpoint) -> dict[str, float]:
    """Stage II (the preset's) from a Stage I snapshot, clustered by the preset's clusterer."""
    config = dataclasses.replace(run.config.training(), pretrain_epochs=snapshot.epoch, checkpoint_every=0)
    trained = _trainer(run, config).fit(run.data.images, run.n_clusters, resume=snapshot)
    labels = run.components["clusterer"].fit_predict(trained.coef, run.n_clusters, seed=run.config.seed).labels
    return clustering_scores(run.data.labels, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="dscnet-orl")
    parser.add_argument("--lengths", default="500,1000,2000,4000,8000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the preset (a TOML value), e.g. pretrain_lr=0.003")
    parser.add_argument("--stage1-only", action="store_true",
                        help="measure the reconstruction at each length only (no Stage II, no labels read)")
    args = parser.parse_args()
    use_cpu_threads(args.threads)
    lengths = sorted(int(v) for v in args.lengths.split(","))
    registry = load_registry(strict=True)
    overrides = tomllib.loads("\n".join(args.set))
    layers = Recipe(args.preset).layers(registry, overrides, {"data_root": args.data_root} if args.data_root else {})
    rows: dict[int, list[tuple[float, float, dict | None]]] = {length: [] for length in lengths}
    for seed in range(args.seeds):
        run = prepare(resolve_config(registry, *layers, {"seed": seed}), registry)
        for length, row in measure(run, lengths, args.stage1_only).items():
            rows[length].append(row)
            scores = "ACC not measured" if row[2] is None else f"acc {row[2]['acc']:.4f}"
            print(f"seed {seed} length {length}: recon {row[0]:.4g}, last-10% gain {row[1]:.3%}, {scores}", flush=True)
    print(f"\n{args.preset} {' '.join(args.set)}, {args.seeds} seeds, {datetime.date.today()}, {platform.machine()}, "
          f"{args.threads} threads, torch {torch.__version__}\n")
    print("| Stage I epochs | reconstruction ½‖X̂−X‖² | gain over the last 10 % | ACC % | NMI % |")
    print("|---|---|---|---|---|")
    for length, values in rows.items():
        print(f"| {length} | {statistics.mean(v[0] for v in values):.4g} | "
              f"{statistics.mean(v[1] for v in values):.2%} | {_score(values, 'acc')} | {_score(values, 'nmi')} |")


def measure(run, lengths: list[int], stage1_only: bool = False) -> dict[int, tuple[float, float, dict | None]]:
    """Per length: the Stage I reconstruction there, its relative gain over the length's last 10 %
    of epochs, and the scores of the preset's Stage II from there (None with ``stage1_only``)."""
    snapshots, seconds = stage1_snapshots(run, lengths)
    print(f"Stage I {seconds:.0f} s for {lengths[-1]} epochs", flush=True)
    recon = [report["losses"]["drh"] for report in snapshots[lengths[-1]].history]
    rows = {}
    for length in lengths:
        tail = recon[length - max(length // 10, 1) - 1]
        scores = None if stage1_only else finish(run, snapshots[length])
        rows[length] = (recon[length - 1], (tail - recon[length - 1]) / tail, scores)
    return rows


def _score(values: list[tuple[float, float, dict | None]], metric: str) -> str:
    if any(v[2] is None for v in values):
        return "not measured"
    scores = [100 * v[2][metric] for v in values]
    return f"{statistics.mean(scores):.2f} ± {_spread(scores):.2f}"


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main()
