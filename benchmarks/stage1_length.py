"""How long must Stage I (the autoencoder) train? ACC of a preset against its Stage I length.

Usage:
    python benchmarks/stage1_length.py --preset dscnet-orl --lengths 500,1000,2000,4000,8000 --seeds 3
    python benchmarks/stage1_length.py --preset dscnet-orl --lengths 500,1000,2000 --set pretrain_lr=0.003
    python benchmarks/stage1_length.py --preset dscnet-yaleb --lengths 400,1000,2000 --seeds 1 --stage1-only

Stage I runs once per seed to the longest length, through the run pipeline: ``execute`` of the preset
with that Stage I hands every checkpoint it makes to a ``checkpoint_sink`` (one every gcd(lengths)
epochs) and is asked to stop once Stage I is done. Each length's Stage II is then ``execute`` of the
preset with ``pretrain_epochs`` = that length, resumed from the checkpoint at that length. That is the
same computation as a fresh run with that length (same seed, same random state: Stage I's first L epochs
do not depend on how many follow), at the cost of one Stage I.
Prints, per length, the Stage I reconstruction loss, its relative improvement over the last 10 %
of the steps (what a plateau rule would see) and dsc-post ACC/NMI mean ± std over the seeds.
``--stage1-only`` skips Stage II and the clustering: the label-free part alone, for datasets whose
Stage II is too long to repeat at every length (Yale B).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import platform
import statistics
import time
import tomllib

import torch

from dscsc_core.plugin_api.registry import Registry, load_registry
from dscsc_core.run.identity import run_fingerprint
from dscsc_core.run.pipeline import LoadedDatasets, PreparedRun, execute, prepare, resolve_config
from dscsc_core.run.recipe import Recipe
from dscsc_core.run.threads import use_cpu_threads
from dscsc_core.training.checkpoint import Checkpoint, TrainingInterrupted
from dscsc_core.training.result import EpochReport


def stage1_snapshots(registry: Registry, layers: list[dict], lengths: list[int],
                     datasets: LoadedDatasets | None = None) -> tuple[dict[int, Checkpoint], float]:
    """Stage I of ``layers`` to max(lengths), keeping its checkpoint at each length; returns them and the Stage I
    seconds."""
    longest = max(lengths)
    run = prepare(resolve_config(registry, *layers, {"pretrain_epochs": longest,
                                                     "checkpoint_every": math.gcd(*lengths)}), registry,
                  datasets=datasets)
    snapshots: dict[int, Checkpoint] = {}
    reports: list[EpochReport] = []

    def keep(state: Checkpoint) -> None:
        if state.stage == "pretrain" and state.epoch in lengths:
            snapshots[state.epoch] = state

    def stage1_done() -> bool:  # asked after every epoch: stop (with a checkpoint) once Stage I is over
        return bool(reports) and (reports[-1].stage != "pretrain" or reports[-1].epoch >= longest)

    start = time.perf_counter()
    try:
        execute(run, on_epoch=reports.append, should_stop=stage1_done, checkpoint_sink=keep)
    except TrainingInterrupted:
        pass
    seconds = time.perf_counter() - start
    missing = [length for length in lengths if length not in snapshots]
    if missing:
        raise SystemExit(f"Stage I stopped before epoch {missing[0]} (pretrain_tol's plateau rule?); "
                         f"lengths reached: {sorted(snapshots)}")
    return snapshots, seconds


def start_of(run: PreparedRun, snapshot: Checkpoint) -> Checkpoint:
    """The Stage I checkpoint of a longer run as the one ``run`` (``pretrain_epochs`` = its epoch) makes at its
    last Stage I epoch: only the run it belongs to and the epoch count its reports name differ."""
    history = [{**report, "total": run.config.pretrain_epochs} if report["stage"] == "pretrain" else report
               for report in snapshot.history]
    return dataclasses.replace(snapshot, fingerprint=run_fingerprint(run), settings=run.config.to_dict(),
                               history=history)


def finish(registry: Registry, layers: list[dict], snapshot: Checkpoint,
           datasets: LoadedDatasets | None = None) -> dict[str, float]:
    """Stage II (the preset's) from a Stage I snapshot, clustered by the preset's clusterer."""
    run = prepare(resolve_config(registry, *layers, {"pretrain_epochs": snapshot.epoch}), registry,
                  datasets=datasets)
    return execute(run, resume=start_of(run, snapshot)).summary["metrics"]


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
    datasets = LoadedDatasets()
    for seed in range(args.seeds):
        for length, row in measure(registry, [*layers, {"seed": seed}], lengths, args.stage1_only, datasets).items():
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


def measure(registry: Registry, layers: list[dict], lengths: list[int], stage1_only: bool = False,
            datasets: LoadedDatasets | None = None) -> dict[int, tuple[float, float, dict | None]]:
    """Per length: the Stage I reconstruction there, its relative gain over the length's last 10 %
    of epochs, and the scores of the run of ``layers`` with that Stage I length (None with ``stage1_only``)."""
    snapshots, seconds = stage1_snapshots(registry, layers, lengths, datasets)
    print(f"Stage I {seconds:.0f} s for {lengths[-1]} epochs", flush=True)
    recon = [report["losses"]["drh"] for report in snapshots[lengths[-1]].history]
    rows = {}
    for length in lengths:
        tail = recon[length - max(length // 10, 1) - 1]
        scores = None if stage1_only else finish(registry, layers, snapshots[length], datasets)
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
