"""Benchmark of the embedded default: `dscsc run` on scikit-learn's digits, several seeds, beside baselines.

Usage: python benchmarks/digits.py [--seeds 3] [--threads 2] [--clusterers dsc-post,spectral]

Prints a Markdown table (mean ± std over seeds, final epoch) to paste into docs/benchmarks.md.
Targets: ACC >= 0.82 and under 120 s per run on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import numpy as np
import torch
from sklearn.cluster import KMeans, SpectralClustering

from dscsc_core.metrics import clustering_scores
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.run.threads import use_cpu_threads


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def baseline_rows(x: np.ndarray, y: np.ndarray, seeds: list[int]) -> list[tuple[str, list[dict]]]:
    runs: dict[str, list[dict]] = {"k-means (pixels)": [], "kNN spectral (pixels)": []}
    for seed in seeds:
        for name, model in (
            ("k-means (pixels)", KMeans(10, n_init=10, random_state=seed)),
            ("kNN spectral (pixels)", SpectralClustering(10, affinity="nearest_neighbors", random_state=seed)),
        ):
            start = time.perf_counter()
            labels = model.fit_predict(x)
            runs[name].append({**clustering_scores(y, labels), "seconds": time.perf_counter() - start})
    return list(runs.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clusterers", default="dsc-post,spectral")
    args = parser.parse_args()
    use_cpu_threads(args.threads)
    seeds = list(range(args.seeds))
    registry = load_registry(strict=True)

    clusterers = args.clusterers.split(",")
    runs: dict[str, list[dict]] = {name: [] for name in clusterers}
    for seed in seeds:
        # Train once per seed (the default clusterer), then score every clusterer on the same C.
        prepared = prepare(resolve_config(registry, {"seed": seed}), registry)
        result = execute(prepared, clusterers={name: registry.create("clusterer", name) for name in clusterers})
        for name in clusterers:
            scored = result.clusterings[name]
            runs[name].append({**scored.scores, "seconds": result.timings.train_s + scored.seconds})
            print(f"# dscsc seed={seed} clusterer={name}: {runs[name][-1]}", flush=True)
    data = prepared.data
    rows = [(f"`dscsc run` (clusterer {name})", runs[name]) for name in clusterers]
    rows += baseline_rows(data.images.flatten(1).numpy(), data.labels, seeds)

    print(f"\nDigits benchmark, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{args.threads} torch threads, torch {torch.__version__}, seeds {seeds}\n")
    print("| method | ACC | NMI | ARI | seconds per run |")
    print("|---|---|---|---|---|")
    for name, runs in rows:
        cells = [mean_std([run[key] for run in runs]) for key in ("acc", "nmi", "ari")]
        print(f"| {name} | {' | '.join(cells)} | {statistics.mean(run['seconds'] for run in runs):.1f} |")


if __name__ == "__main__":
    main()
