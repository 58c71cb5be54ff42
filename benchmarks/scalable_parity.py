"""The scalable path against the dense path on the paper's benchmarks: the same C when nothing is cut, and how far
a smaller Stage II batch moves the scores.

Usage:
    python benchmarks/scalable_parity.py [--presets orl,coil20,umist,mnist1000,yaleb-2432] [--seeds 1]
        [--batch 0] [--support 0] [--pretrain-epochs E] [--epochs E] [--threads 2] [--data-root DIR]

For each preset and seed, two runs share one Stage I (a Stage I cache in a temporary folder): the dense path
(eq. 1's N x N C) and the scalable path with ``--support`` neighbours (0: every other sample, N - 1) and Stage II
batches of ``--batch`` (0: all N samples at once). Both use a zero diag(C), which the scalable path always has
(the presets' own "free" diagonal has no place on a support). The preset's clusterer then clusters both Cs (the
scalable one made dense for it), so every difference comes from Stage II. Prints, per run pair, the largest
|C entry difference| relative to the largest |C| entry, and ACC/NMI of both; with several seeds, the paired
difference mean ± std (sample std). ``--pretrain-epochs`` / ``--epochs`` shorten the schedules (say so when
you quote the table).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import sys
import tempfile

import numpy as np
from scipy import sparse

from dscsc_core.metrics import clustering_scores
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import LoadedDatasets, cluster, execute, prepare, resolve_config
from dscsc_core.run.recipe import Recipe


def run_pair(registry, preset: str, seed: int, args, datasets: LoadedDatasets, cache: str) -> dict:
    overrides = {"seed": seed, "threads": args.threads, "coef_diagonal": "zero"}
    for name in ("pretrain_epochs", "epochs", "data_root"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    layers = Recipe(preset).layers(registry, overrides)
    dense_run = prepare(resolve_config(registry, *layers), registry, datasets=datasets)
    n = dense_run.data.images.shape[0]
    dense = execute(dense_run, stage1_cache=cache)
    support = args.support or n - 1
    scalable_layer = {"coef_support": support, "stage2_batch_size": args.batch or n, "clusterer": "sparse-spectral"}
    scalable_run = prepare(resolve_config(registry, *_without_clusterer_params(layers), scalable_layer), registry,
                           datasets=datasets)
    scalable = execute(scalable_run, stage1_cache=cache)
    scalable_coef = scalable.coef.toarray() if sparse.issparse(scalable.coef) else scalable.coef
    relabelled = cluster(dense_run, scalable_coef)  # the preset's own clusterer on the scalable C
    scores = clustering_scores(dense_run.data.labels, relabelled.labels)
    return {"n": n, "support": support, "batch": args.batch or n,
            "c_difference": float(np.abs(scalable_coef - dense.coef).max() / np.abs(dense.coef).max()),
            "dense": dense.metrics, "scalable": scores, "stage1_shared": scalable.timings.stage1.reused}


def _without_clusterer_params(layers: list[dict]) -> list[dict]:
    """The preset's layers without its clusterer's parameters, which the sparse clusterer does not take."""
    def strip(layer: dict) -> dict:
        params = {key: value for key, value in layer.get("params", {}).items() if key != "clusterer"}
        return {**layer, "params": params} if "params" in layer else layer
    return [strip(layer) for layer in layers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="orl,coil20,umist,mnist1000,yaleb-2432")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--batch", type=int, default=0, help="Stage II batch of the scalable run (0: N)")
    parser.add_argument("--support", type=int, default=0, help="neighbours per sample (0: N - 1)")
    parser.add_argument("--pretrain-epochs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    registry = load_registry()
    print(f"{datetime.date.today()}, {platform.machine()}, {args.threads} threads; "
          f"python benchmarks/scalable_parity.py {shlex.join(sys.argv[1:])}\n")
    print("| preset | seed | N | support | batch | max abs(C diff) / max abs(C) | ACC % dense | ACC % scalable | "
          "NMI % dense | NMI % scalable |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    datasets = LoadedDatasets()
    for preset in args.presets.split(","):
        differences = []
        with tempfile.TemporaryDirectory() as cache:
            for seed in range(args.seeds):
                pair = run_pair(registry, preset, seed, args, datasets, cache)
                dense, scalable = pair["dense"], pair["scalable"]
                differences.append(100 * (scalable["acc"] - dense["acc"]))
                print(f"| {preset} | {seed} | {pair['n']} | {pair['support']} | {pair['batch']} | "
                      f"{pair['c_difference']:.1e} | {100 * dense['acc']:.2f} | {100 * scalable['acc']:.2f} | "
                      f"{100 * dense['nmi']:.2f} | {100 * scalable['nmi']:.2f} |", flush=True)
        if len(differences) > 1:
            print(f"| {preset} | ACC scalable − dense, {len(differences)} seeds | | | | | "
                  f"{np.mean(differences):+.2f} ± {np.std(differences, ddof=1):.2f} | | | |", flush=True)


if __name__ == "__main__":
    main()
