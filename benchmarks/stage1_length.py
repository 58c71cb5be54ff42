"""How long must Stage I (the autoencoder) train? ACC of a preset against its Stage I length.

Usage:
    python benchmarks/stage1_length.py --preset dscnet-orl --lengths 500,1000,2000,4000,8000 --seeds 3
    python benchmarks/stage1_length.py --preset dscnet-orl --lengths 500,1000,2000 --set pretrain_lr=0.003

Stage I runs once per seed to the longest length, keeping a checkpoint at every length asked for;
each length's Stage II then starts from its checkpoint. That is the same computation as a fresh run
with ``pretrain_epochs`` = that length (same seed, same random state), at the cost of one Stage I.
Prints, per length, the Stage I reconstruction loss, its relative improvement over the last 10 %
of the steps (what a plateau rule would see) and dsc-post ACC/NMI mean ± std over the seeds.
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

from dscsc_core.checkpoint import Checkpoint
from dscsc_core.metrics import clustering_scores
from dscsc_core.recipe import Recipe
from dscsc_core.registry import load_registry
from dscsc_core.runner import prepare, resolve_config
from dscsc_core.trainer import Trainer


def stage1_snapshots(run, lengths: list[int]) -> tuple[dict[int, Checkpoint], float]:
    """Stage I to max(lengths), keeping a checkpoint at each length; returns them and the Stage I seconds."""
    snapshots: dict[int, Checkpoint] = {}
    config = dataclasses.replace(run.config.training(), pretrain_epochs=max(lengths), epochs=0,
                                 checkpoint_every=math.gcd(*lengths))

    def keep(state: Checkpoint) -> None:
        if state.stage == "pretrain" and state.epoch in lengths:
            snapshots[state.epoch] = copy.deepcopy(state)  # the state dicts reference live tensors

    trainer = _trainer(run, config, checkpointer=keep)
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = sorted(int(v) for v in args.lengths.split(","))
    registry = load_registry(strict=True)
    overrides = tomllib.loads("\n".join(args.set))
    layers = Recipe(args.preset).layers(registry, overrides, {"data_root": args.data_root} if args.data_root else {})
    rows: dict[int, list[tuple[float, float, dict]]] = {length: [] for length in lengths}
    for seed in range(args.seeds):
        run = prepare(resolve_config(registry, *layers, {"seed": seed}), registry)
        snapshots, seconds = stage1_snapshots(run, lengths)
        recon = [r["losses"]["drh"] for r in snapshots[lengths[-1]].history]
        for length in lengths:
            tail = recon[length - max(length // 10, 1) - 1]
            improvement = (tail - recon[length - 1]) / tail
            rows[length].append((recon[length - 1], improvement, finish(run, snapshots[length])))
            print(f"seed {seed} length {length}: recon {recon[length - 1]:.4g}, last-10% gain {improvement:.3%}, "
                  f"acc {rows[length][-1][2]['acc']:.4f} (Stage I {seconds:.0f} s for {lengths[-1]})", flush=True)
    print(f"\n{args.preset} {' '.join(args.set)}, {args.seeds} seeds, {datetime.date.today()}, {platform.machine()}, "
          f"{args.threads} threads, torch {torch.__version__}\n")
    print("| Stage I steps | reconstruction ½‖X̂−X‖² | gain over the last 10 % | ACC % | NMI % |")
    print("|---|---|---|---|---|")
    for length, values in rows.items():
        acc = [100 * v[2]["acc"] for v in values]
        nmi = [100 * v[2]["nmi"] for v in values]
        print(f"| {length} | {statistics.mean(v[0] for v in values):.4g} | "
              f"{statistics.mean(v[1] for v in values):.2%} | {statistics.mean(acc):.2f} ± {_spread(acc):.2f} | "
              f"{statistics.mean(nmi):.2f} ± {_spread(nmi):.2f} |")


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main()
