"""One seed of a preset, every stage, printing its pace as it goes.

Usage: python benchmarks/timed_seed.py --preset yaleb-2432 [--seed 0] [--device cuda] [--threads 2]
       [--every 100] [--data-root DIR] [--set precision=bf16]

Prints the seconds since the start every ``--every`` epochs of each stage, so a run stopped at a time
limit still tells what a step costs, then one JSON line: scores with both clusterers and the stage
timings. Nothing is stored: Stage I is trained, as in a user's first run.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.run.recipe import Recipe
from dscsc_core.run.threads import use_cpu_threads


def _setting(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--set", type=_setting, action="append", default=[], help="NAME=VALUE, a run setting")
    args = parser.parse_args()
    use_cpu_threads(args.threads)
    registry = load_registry(strict=True)
    overrides = {"seed": args.seed, "device": args.device, **dict(args.set)}
    if args.data_root:
        overrides["data_root"] = args.data_root
    run = prepare(resolve_config(registry, *Recipe(args.preset).layers(registry, overrides)), registry)
    start = time.perf_counter()

    def pace(report) -> None:
        if report.epoch % args.every == 0 or report.epoch in (1, report.total):
            print(f"{time.perf_counter() - start:8.1f} s  {report.stage} {report.epoch}/{report.total}", flush=True)

    # The preset's own clusterer keeps its parameters; the other one is scored with its defaults.
    others = {name: registry.create("clusterer", name) for name in ("dsc-post", "spectral")
              if name != run.config.clusterer}
    result = execute(run, on_epoch=pace, clusterers=others)
    print(json.dumps({
        "preset": args.preset, "seed": args.seed, "device": str(run.device), "threads": args.threads,
        "precision": run.config.precision, "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else None,
        "scores": {name: scored.scores for name, scored in result.clusterings.items()},
        "timings": result.timings.to_dict(), "wall_s": time.perf_counter() - start,
    }))


if __name__ == "__main__":
    main()
