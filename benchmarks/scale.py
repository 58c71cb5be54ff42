"""The scalable path at size: wall clock, peak memory and scores of whole `dscsc run`s, with pixel baselines.

Usage:
    python benchmarks/scale.py mnist [--data-root DIR] [--seed 0 | --seeds 0,1,2,3,4] [--threads 2]
    python benchmarks/scale.py synthetic [--sizes 10000,30000,100000] [--seed 0] [--threads 2]

``mnist``: `dscsc run --preset mnist-test` (the 10,000 MNIST test images, every stage) at each seed, then, on
the same pixels in the same invocation, k-means and scikit-learn's SpectralClustering on a 10-nearest-neighbour
graph (the baselines issue 47 names), and the same two on the preset's scattering features. ``synthetic``: the
union of 10 subspaces at each size N (N/10 images per subspace) with the command printed below, for the scaling
table: time and peak memory should grow linearly in N on this path, which never holds an N x N matrix.

Each run is a fresh `dscsc` process; its peak resident memory is that process's own (``os.wait4``), its
seconds the wall clock around it. Prints a Markdown table with the date, the machine and every command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The scalable path on the synthetic union of subspaces: C on 20 neighbours, both stages in batches of 1000.
SYNTHETIC_RUN = ("--dataset synthetic --dataset.subspaces 10 --coef-support 20 --stage2-batch-size 1000 "
                 "--pretrain-batch-size 1000 --pretrain-epochs 20 --epochs 30 --clusterer sparse-spectral")
MNIST_RUN = "--preset mnist-test"


def dscsc_command() -> list[str]:
    """The `dscsc` console script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("dscsc")
    return [str(beside)] if beside.exists() else ["dscsc"]


def timed_run(arguments: str, common: list[str]) -> dict:
    """One `dscsc run` in its own process: its JSON summary, wall seconds and peak resident GiB."""
    with tempfile.TemporaryDirectory() as folder:
        command = [*dscsc_command(), "run", *shlex.split(arguments), *common, "--no-figures", "--json",
                   "--out", str(Path(folder) / "run")]
        start = time.perf_counter()
        with open(Path(folder) / "summary.json", "w") as out:
            child = subprocess.Popen(command, stdout=out)
            _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"benchmark run failed (exit {os.waitstatus_to_exitcode(status)}): {shlex.join(command)}")
        summary = json.loads((Path(folder) / "summary.json").read_text())
    return {"summary": summary, "seconds": seconds, "peak_gib": usage.ru_maxrss / 2**20}


def run_row(label: str, run: dict) -> str:
    scores, timings = run["summary"]["metrics"], run["summary"]["timings"]
    stages = f"{timings['pretrain_s']:.0f} / {timings['finetune_s']:.0f} / {timings['cluster_s']:.1f}"
    return (f"| {label} | {run['seconds']:.0f} | {stages} | {run['peak_gib']:.2f} | {100 * scores['acc']:.2f} | "
            f"{100 * scores['nmi']:.2f} | {100 * scores['ari']:.2f} |")


def baseline_rows(data_root: str | None, seed: int) -> list[str]:
    """k-means and scikit-learn's spectral clustering (10-NN graph) on the MNIST test pixels (issue 47's
    baselines), then the same on the preset's scattering features, spectral clustering there as the preset
    clusters (Ng-Jordan-Weiss rows, 15 eigenvectors, k-means): what the network adds beyond its features."""
    from sklearn.cluster import KMeans, SpectralClustering

    from dscsc_core.metrics import clustering_scores
    from dscsc_core.plugin_api.datapaths import DataRoot
    from dscsc_core.plugin_api.registry import load_registry

    registry = load_registry()
    data = registry.create("dataset", "mnist-test").load(DataRoot.resolve(data_root))
    pixels = data.images.flatten(1).numpy().astype(np.float64)
    methods = {
        "k-means, pixels (n_init 10)": (pixels, KMeans(data.n_clusters, n_init=10, random_state=seed)),
        "scikit-learn spectral, pixels (10-NN graph)": (pixels, SpectralClustering(
            data.n_clusters, affinity="nearest_neighbors", n_neighbors=10, random_state=seed)),
    }
    start = time.perf_counter()
    scattering = registry.create("feature", "scattering")(data.images).flatten(1).numpy().astype(np.float64)
    features_seconds = time.perf_counter() - start
    methods.update({
        "k-means, scattering features": (scattering, KMeans(data.n_clusters, n_init=10, random_state=seed)),
        "spectral, scattering features (10-NN graph, NJW, 15 eigenvectors)":
            (scattering, _NjwSpectral(data.n_clusters, seed)),
    })
    rows = []
    for label, (inputs, method) in methods.items():
        start = time.perf_counter()
        predicted = method.fit_predict(inputs)
        seconds = time.perf_counter() - start + (features_seconds if inputs is scattering else 0.0)
        scores = clustering_scores(data.labels, predicted)
        rows.append(f"| {label} | {seconds:.1f} | – | – | {100 * scores['acc']:.2f} | {100 * scores['nmi']:.2f} | "
                    f"{100 * scores['ari']:.2f} |")
    return rows


class _NjwSpectral:
    """A 10-nearest-neighbour graph clustered as the mnist-test preset clusters C."""

    def __init__(self, n_clusters: int, seed: int):
        self.n_clusters, self.seed = n_clusters, seed

    def fit_predict(self, inputs: np.ndarray) -> np.ndarray:
        from scipy import sparse
        from sklearn.neighbors import kneighbors_graph

        from dscsc_plugins.clusterers import SparseSpectralClusterer

        graph = kneighbors_graph(inputs, 10, include_self=False)
        clusterer = SparseSpectralClusterer(k=10, normalize_rows=True, assign_labels="kmeans", n_components=15)
        return clusterer.fit_predict(sparse.csr_matrix(graph), self.n_clusters, self.seed).labels


def mnist_rows(args: argparse.Namespace, common: list[str]) -> None:
    """The preset at each seed (one row each, then mean ± sample std), then the baselines at the first seed."""
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else [args.seed]
    scores = []
    for seed in seeds:
        run = timed_run(MNIST_RUN, ["--seed", str(seed), *common])
        scores.append([100 * run["summary"]["metrics"][name] for name in ("acc", "nmi", "ari")])
        print(run_row(f"`dscsc run {MNIST_RUN}`, seed {seed}", run), flush=True)
    if len(seeds) > 1:
        mean, std = np.mean(scores, axis=0), np.std(scores, axis=0, ddof=1)
        cells = " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in zip(mean, std, strict=True))
        print(f"| seeds {','.join(map(str, seeds))}: mean ± sample std | | | | {cells} |", flush=True)
    for row in baseline_rows(args.data_root, seeds[0]):
        print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("mnist", "synthetic"))
    parser.add_argument("--sizes", default="10000,30000,100000", help="synthetic: numbers of images")
    parser.add_argument("--data-root", default=None, help="mnist: the folder holding mnist/ (else $DSCSC_DATA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default="", help="mnist: comma-separated seeds of the preset (else --seed)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    common = ["--threads", str(args.threads), *(["--data-root", args.data_root] if args.data_root else [])]
    print(f"{datetime.date.today()}, {platform.machine()} ({platform.processor() or 'cpu'}), {os.cpu_count()} "
          f"CPUs, {args.threads} threads; python benchmarks/scale.py {shlex.join(sys.argv[1:])}\n")
    print("| run | wall s | Stage I / Stage II / clustering s | peak RSS GiB | ACC % | NMI % | ARI % |")
    print("|---|---|---|---|---|---|---|")
    if args.what == "mnist":
        mnist_rows(args, common)
        return
    seeded = ["--seed", str(args.seed), *common]
    for n in (int(size) for size in args.sizes.split(",")):
        arguments = f"{SYNTHETIC_RUN} --dataset.per-subspace {n // 10}"
        print(run_row(f"N = {n}", timed_run(arguments, seeded)), flush=True)
    print(f"\ncommand of each row: dscsc run {SYNTHETIC_RUN} --dataset.per-subspace N/10 {shlex.join(seeded)}")


if __name__ == "__main__":
    main()
