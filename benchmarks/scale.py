"""The scalable path at size: wall clock, peak memory and scores of whole `dscsc run`s, with pixel baselines.

Usage:
    python benchmarks/scale.py mnist [--data-root DIR] [--seed 0] [--threads 2]
    python benchmarks/scale.py synthetic [--sizes 10000,30000,100000] [--seed 0] [--threads 2]

``mnist``: `dscsc run --preset mnist-test` (the 10,000 MNIST test images, every stage), then, on the same
pixels in the same invocation, k-means and scikit-learn's SpectralClustering on a 10-nearest-neighbour graph
(the baselines issue 47 names). ``synthetic``: the union of 10 subspaces at each size N (N/10 images per
subspace) with the command printed below, for the scaling table: time and peak memory should grow linearly
in N on this path, which never holds an N x N matrix.

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
    """k-means and scikit-learn's spectral clustering (10-NN graph) on the MNIST test pixels."""
    from sklearn.cluster import KMeans, SpectralClustering

    from dscsc_core.metrics import clustering_scores
    from dscsc_core.plugin_api.datapaths import DataRoot
    from dscsc_core.plugin_api.registry import load_registry

    data = load_registry().create("dataset", "mnist-test").load(DataRoot.resolve(data_root))
    pixels = data.images.flatten(1).numpy().astype(np.float64)
    methods = {
        "k-means, pixels (n_init 10)": KMeans(data.n_clusters, n_init=10, random_state=seed),
        "scikit-learn spectral, pixels (10-NN graph)": SpectralClustering(
            data.n_clusters, affinity="nearest_neighbors", n_neighbors=10, random_state=seed),
    }
    rows = []
    for label, method in methods.items():
        start = time.perf_counter()
        predicted = method.fit_predict(pixels)
        seconds = time.perf_counter() - start
        scores = clustering_scores(data.labels, predicted)
        rows.append(f"| {label} | {seconds:.1f} | – | – | {100 * scores['acc']:.2f} | {100 * scores['nmi']:.2f} | "
                    f"{100 * scores['ari']:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("mnist", "synthetic"))
    parser.add_argument("--sizes", default="10000,30000,100000", help="synthetic: numbers of images")
    parser.add_argument("--data-root", default=None, help="mnist: the folder holding mnist/ (else $DSCSC_DATA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    common = ["--seed", str(args.seed), "--threads", str(args.threads)]
    if args.data_root:
        common += ["--data-root", args.data_root]
    print(f"{datetime.date.today()}, {platform.machine()} ({platform.processor() or 'cpu'}), {os.cpu_count()} "
          f"CPUs, {args.threads} threads; python benchmarks/scale.py {shlex.join(sys.argv[1:])}\n")
    print("| run | wall s | Stage I / Stage II / clustering s | peak RSS GiB | ACC % | NMI % | ARI % |")
    print("|---|---|---|---|---|---|---|")
    if args.what == "mnist":
        print(run_row(f"`dscsc run {MNIST_RUN}`", timed_run(MNIST_RUN, common)), flush=True)
        for row in baseline_rows(args.data_root, args.seed):
            print(row, flush=True)
        return
    for n in (int(size) for size in args.sizes.split(",")):
        arguments = f"{SYNTHETIC_RUN} --dataset.per-subspace {n // 10}"
        print(run_row(f"N = {n}", timed_run(arguments, common)), flush=True)
    print(f"\ncommand of each row: dscsc run {SYNTHETIC_RUN} --dataset.per-subspace N/10 {shlex.join(common)}")


if __name__ == "__main__":
    main()
