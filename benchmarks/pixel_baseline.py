"""A shallow reference: least-squares self-expression (LSR) on raw pixels, scored like the deep runs.

Usage:
    python benchmarks/pixel_baseline.py [--datasets orl,yaleb,...] [--lambdas 0.01,0.1,1] [--output FILE]

For each preset's dataset, C = (G + λ·s·I)⁻¹ G with G = X Xᵀ over the flattened [0, 1] pixels and
s = mean ‖x_i‖² (so λ is relative to the data's scale), diagonal set to 0 afterwards. Both of the
benchmark clusterers then score C with the preset's clusterer settings. No training, no labels
except for scoring; every λ of the grid is reported (none is picked by its score). A deep model
that does not beat this table has not learned features worth self-expressing.
The dataset files are read from the data root (--data-root, else $DSCSC_DATA).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np
import torch

from dscsc_core.metrics import clustering_scores
from dscsc_core.plugin_api.datapaths import DataRoot
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import build_components, resolve_config
from dscsc_core.run.recipe import Recipe
from dscsc_core.run.threads import use_cpu_threads

CLUSTERERS = ("spectral", "dsc-post")


def least_squares_coefficients(pixels: np.ndarray, relative_lambda: float) -> np.ndarray:
    """Closed-form min ½‖X − XC‖² + λ/2‖C‖² (columns express samples), diagonal zeroed."""
    gram = torch.from_numpy(pixels @ pixels.T)
    scale = float(gram.diagonal().mean())
    ridge = gram + relative_lambda * scale * torch.eye(len(gram), dtype=gram.dtype)
    coef = torch.linalg.solve(ridge, gram).numpy()
    np.fill_diagonal(coef, 0.0)
    return coef


def baseline_rows(registry, preset: str, lambdas: list[float], data_root: str | None) -> list[str]:
    layers = Recipe(preset).layers(registry, {"data_root": data_root} if data_root else {})
    config = resolve_config(registry, *layers)
    data = build_components(config, registry)[1]["dataset"].load(DataRoot.resolve(config.data_root))
    pixels = data.images.reshape(len(data.images), -1).double().numpy()
    # Each clusterer with the preset's settings (a swapped-in one gets its defaults), built once.
    clusterers = [build_components(resolve_config(registry, *layers, {"clusterer": name}), registry)[1]["clusterer"]
                  for name in CLUSTERERS]
    rows = []
    for relative_lambda in lambdas:
        start = time.perf_counter()
        coef = least_squares_coefficients(pixels, relative_lambda)
        cells = []
        for clusterer in clusterers:
            labels = clusterer.cluster(coef, data.n_clusters, config.seed).labels
            scores = clustering_scores(data.labels, labels)
            cells.append(f"{100 * scores['acc']:.2f} | {100 * scores['nmi']:.2f}")
        seconds = time.perf_counter() - start
        rows.append(f"| {preset} | {relative_lambda:g} | {' | '.join(cells)} | {seconds:.0f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="orl,yaleb,umist,mnist1000,coil20", help="presets, comma-separated")
    parser.add_argument("--lambdas", default="0.01,0.1,1", help="λ relative to mean ‖x‖², comma-separated")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="also write the table to this file")
    args = parser.parse_args()
    use_cpu_threads(args.threads)
    registry = load_registry()
    lambdas = [float(value) for value in args.lambdas.split(",")]
    lines = [
        f"LSR on raw pixels, {datetime.date.today()}, {platform.machine()}, {args.threads} torch threads, "
        f"command: `python benchmarks/pixel_baseline.py --datasets {args.datasets} --lambdas {args.lambdas}`",
        "",
        "| dataset | λ / mean‖x‖² | ACC % spectral | NMI % spectral | ACC % dsc-post | NMI % dsc-post | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for preset in args.datasets.split(","):
        rows = baseline_rows(registry, preset.strip(), lambdas, args.data_root)
        print("\n".join(rows), flush=True)
        lines += rows
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
