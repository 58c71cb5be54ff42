"""Reproduce the paper's tables with the committed presets and write docs/results.md.

Usage:
    python benchmarks/reproduce.py [--suite main,table4,fig3,balance] [--datasets orl,umist,...]
                                   [--seeds 5] [--sweep-seeds 5] [--runs bench-runs] [--threads 2]
    python benchmarks/reproduce.py --report-only      # re-render docs/results.md from stored runs

Every (configuration, seed) trains once and is scored by both clusterers on the same C: `spectral`
on A = ½(|C| + |Cᵀ|) as the paper describes, and `dsc-post` (DSC-Net's post-processing). Runs are
stored under --runs and reused, so an interrupted reproduction resumes where it stopped.
The dataset files are read from the data root (--data-root, else $DSCSC_DATA).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path

import torch

from dscsc_core.benchmark import BenchCase, RecordStore, run_bench, summarise
from dscsc_core.registry import Registry, load_registry

DOCS = Path(__file__).resolve().parent.parent / "docs"
CLUSTERERS = ("spectral", "dsc-post")
MAIN_DATASETS = ("orl", "yaleb", "umist", "mnist1000", "coil20")
TIME_TARGET_S = {"orl": 120, "umist": 180, "mnist1000": 300, "coil20": 300, "yaleb": 1200, "yaleb-2432": 1200}
SWEEP_K = (0, 5, 10, 15, 20, 25, 30)
# The self-expression balance ablation: each preset against the same preset with the other L_SEM
# reduction (eq. 3 summed as printed, or per sample); the presets' own choice is label-free (dscsc tune).
SEM_REDUCTIONS = ("sum", "mean")
# Table 4 of the paper (ORL, ACC / NMI %): rows and the overrides that remove a module.
TABLE4 = (
    ("DRH", {"beta": 0.0, "augment": "none"}, (86.00, 90.34)),
    ("DRH+SCH", {"augment": "none"}, (87.00, 92.10)),
    ("Augmentation+DRH+SCH", {}, (90.75, 94.44)),
)


def preset_case(registry: Registry, name: str, overrides: dict | None = None, label: str | None = None,
                data_root: str | None = None) -> BenchCase:
    layers = [registry.preset(name).read()]
    layers += [overrides] if overrides else []
    layers += [{"data_root": data_root}] if data_root else []
    return BenchCase(label or name, tuple(layers))


def suites(registry: Registry, datasets, data_root) -> dict[str, list[BenchCase]]:
    return {
        "main": [preset_case(registry, name, data_root=data_root) for name in datasets],
        "table4": [preset_case(registry, "orl", overrides or None, "orl" if not overrides else f"orl {row}", data_root)
                   for row, overrides, _ in TABLE4],
        "fig3": [preset_case(registry, "orl", None if k == 10 else {"params": {"miner": {"k": k}}},
                             "orl" if k == 10 else f"orl k={k}", data_root) for k in SWEEP_K],
        "balance": [preset_case(registry, name, {"sem_reduction": other}, f"{name} sem={other}", data_root)
                    for name in datasets for other in [_other_reduction(registry, name)]],
    }


def preset_reduction(registry: Registry, name: str) -> str:
    return registry.preset(name).read().get("sem_reduction", SEM_REDUCTIONS[0])


def _other_reduction(registry: Registry, name: str) -> str:
    return next(reduction for reduction in SEM_REDUCTIONS if reduction != preset_reduction(registry, name))


def machine_line(threads: int) -> str:
    return (f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} CPU cores, {threads} torch threads, "
            f"torch {torch.__version__}, Python {platform.python_version()}, "
            f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")


def stored(registry: Registry, store: RecordStore, cases: list[BenchCase], seeds: range):
    records = []
    for case in cases:
        fingerprint = case.fingerprint(registry)
        records += [record for seed in seeds if (record := store.find(case, fingerprint, seed)) is not None]
    return records


def cell(summary, metric: str) -> str:
    return f"{100 * summary.mean[metric]:.2f} ± {100 * summary.std[metric]:.2f}"


def main_table(registry, records) -> list[str]:
    lines = ["| dataset | clusterer | seeds | ACC % | NMI % | ARI % | s / seed | paper ACC / NMI | ACC gap |",
             "|---|---|---|---|---|---|---|---|---|"]
    for clusterer in CLUSTERERS:
        for s in summarise(records, clusterer):
            paper = registry.preset(s.case).read().get("preset", {}).get("paper", {})
            gap = f"{100 * s.mean['acc'] - paper['acc']:+.2f}" if paper else "-"
            paper_cell = f"{paper['acc']:.2f} / {paper['nmi']:.2f}" if paper else "-"
            lines.append(f"| {s.case} | {clusterer} | {len(s.seeds)} | {cell(s, 'acc')} | {cell(s, 'nmi')} | "
                         f"{cell(s, 'ari')} | {s.seconds:.0f} | {paper_cell} | {gap} |")
    return lines


def time_table(records) -> list[str]:
    lines = ["| dataset | target (one seed, all stages) | measured mean (dsc-post) | met |", "|---|---|---|---|"]
    for s in summarise(records, "dsc-post"):
        target = TIME_TARGET_S.get(s.case)
        if target:
            lines.append(f"| {s.case} | {target / 60:.0f} min | {s.seconds / 60:.1f} min | "
                         f"{'yes' if s.seconds <= target else 'no'} |")
    return lines


def table4(records) -> list[str]:
    by_case = {s.case: s for s in summarise(records, "dsc-post")}
    spectral = {s.case: s for s in summarise(records, "spectral")}
    lines = ["| modules | seeds | ACC % (dsc-post) | NMI % (dsc-post) | ACC % (spectral) | paper ACC / NMI |",
             "|---|---|---|---|---|---|"]
    for row, overrides, paper in TABLE4:
        name = "orl" if not overrides else f"orl {row}"
        if name in by_case:
            s, p = by_case[name], spectral[name]
            lines.append(f"| {row} | {len(s.seeds)} | {cell(s, 'acc')} | {cell(s, 'nmi')} | {cell(p, 'acc')} | "
                         f"{paper[0]:.2f} / {paper[1]:.2f} |")
    return lines


def sweep(records) -> tuple[list[str], list[tuple[int, object, object]]]:
    post = {s.case: s for s in summarise(records, "dsc-post")}
    spectral = {s.case: s for s in summarise(records, "spectral")}
    points = []
    for k in SWEEP_K:
        name = "orl" if k == 10 else f"orl k={k}"
        if name in post:
            points.append((k, post[name], spectral[name]))
    lines = ["| k | seeds | ACC % (dsc-post) | NMI % (dsc-post) | ACC % (spectral) |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {len(a.seeds)} | {cell(a, 'acc')} | {cell(a, 'nmi')} | {cell(b, 'acc')} |"
              for k, a, b in points]
    return lines, points


def _case_mean(records, value, spec: str) -> dict[str, str]:
    """Per case, the mean of ``value(record)`` over the records that have it, formatted; absent: no entry.

    Older records may lack a value: then the cell says over how many of the case's seeds it is.
    """
    values: dict[str, list[float]] = {}
    seeds: dict[str, int] = {}
    for record in records:
        seeds[record.case] = seeds.get(record.case, 0) + 1
        if (v := value(record)) is not None:
            values.setdefault(record.case, []).append(v)
    return {case: format(sum(vs) / len(vs), spec) + ("" if len(vs) == seeds[case] else f" ({len(vs)} of {seeds[case]})")
            for case, vs in values.items()}


def _scale_ratio(record):
    scale = record.feature_scale
    return scale["final"] / scale["stage1_end"] if {"stage1_end", "final"} <= set(scale) else None


def balance_table(registry, main_records, balance_records) -> list[str]:
    """Each preset against the same preset with the other L_SEM reduction, and what Stage II did to the features."""
    records = [*main_records, *balance_records]
    # Three significant digits: a collapse can shrink the features a million-fold.
    ratio = _case_mean(records, _scale_ratio, ".3g")
    silhouette = _case_mean(records, lambda r: r.silhouette, ".3f")
    fit = _case_mean(records, lambda r: r.subspace_fit, ".4f")
    spectral = {s.case: s for s in summarise(records, "spectral")}
    lines = ["| dataset | L_SEM | seeds | ACC % (dsc-post) | NMI % (dsc-post) | ACC % (spectral) | "
             "feature scale after / before Stage II | silhouette (input, no labels) | subspace fit (no labels) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in sorted(summarise(records, "dsc-post"), key=lambda s: s.case):
        dataset, _, variant = s.case.partition(" sem=")
        variant = variant or f"{preset_reduction(registry, dataset)} (preset)"
        lines.append(f"| {dataset} | {variant} | {len(s.seeds)} | {cell(s, 'acc')} | {cell(s, 'nmi')} | "
                     f"{cell(spectral[s.case], 'acc')} | {ratio.get(s.case, '-')} | {silhouette.get(s.case, '-')} | "
                     f"{fit.get(s.case, '-')} |")
    return lines


def plot_sweep(points, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axis = plt.subplots(figsize=(5, 3.2))
    for index, label in ((1, "dsc-post"), (2, "spectral on A")):
        ks = [p[0] for p in points]
        means = [100 * p[index].mean["acc"] for p in points]
        stds = [100 * p[index].std["acc"] for p in points]
        axis.errorbar(ks, means, yerr=stds, marker="o", capsize=3, label=label)
    axis.axhline(89.50, color="grey", linestyle=":", label="S2ConvSCN (paper)")
    axis.set_xlabel("k (neighbours spared from being negatives)")
    axis.set_ylabel("ACC % on ORL (mean ± std)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def render(registry, all_suites, folder: Path, seeds: range, sweep_seeds: range, command: str, machine: str,
           output: Path) -> str:
    store = RecordStore(folder)
    main_records = stored(registry, store, all_suites["main"], seeds)
    balance_records = stored(registry, store, all_suites["balance"], seeds)
    t4_records = stored(registry, store, all_suites["table4"], seeds)
    sweep_lines, points = sweep(stored(registry, store, all_suites["fig3"], sweep_seeds))
    figure = output.parent / "figures" / "orl-k-sweep.png"  # beside the report it belongs to
    plotted = bool(points) and plot_sweep(points, figure)
    notes = Path(__file__).with_name("results-notes.md")
    parts = [
        "# Reproduction results", "",
        "Generated by `benchmarks/reproduce.py` from stored runs; do not edit by hand (notes come from "
        "`benchmarks/results-notes.md`). Mean ± sample std over seeds 0..N-1, final epoch, never a best run "
        "or best epoch. Both clusterers score the same learned C.", "",
        f"- Command: `{command}`", f"- Machine: {machine}", "",
        "## Tables 2 and 3: every dataset, both clusterers", "", *main_table(registry, main_records), "",
        "ACC gap = our mean ACC minus the paper's DSCSC ACC (percentage points).", "",
        "## Time per seed", "", *time_table(main_records), "",
        "## Table 4: module ablation on ORL", "", *table4(t4_records), "",
        "## Figure 3: ACC versus k on ORL", "", *sweep_lines, "",
    ]
    if plotted:
        parts += ["![ACC versus k on ORL](figures/orl-k-sweep.png)", ""]
    if balance_records:
        balanced = {record.case.partition(" sem=")[0] for record in balance_records}
        parts += ["## Self-expression balance: eq. 3 summed or per sample", "",
                  "Each preset against the same preset with the other L_SEM reduction. The presets chose theirs "
                  "without labels (`dscsc tune`, see their provenance); this ablation shows, with labels, what the "
                  "other choice gives.", "",
                  *balance_table(registry, [r for r in main_records if r.case in balanced], balance_records), ""]
    if notes.exists():
        parts += [notes.read_text().strip(), ""]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="main,table4,fig3")
    parser.add_argument("--datasets", default=",".join(MAIN_DATASETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweep-seeds", type=int, default=5)
    parser.add_argument("--runs", type=Path, default=Path("bench-runs"))
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--output", type=Path, default=DOCS / "results.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    registry = load_registry(strict=True)
    all_suites = suites(registry, [d for d in args.datasets.split(",") if d], args.data_root)
    seeds, sweep_seeds = range(args.seeds), range(args.sweep_seeds)

    def progress(record, reused):
        print(record.progress_line(reused), flush=True)

    if not args.report_only:
        for suite in args.suite.split(","):
            run_bench(registry, all_suites[suite], sweep_seeds if suite == "fig3" else seeds, CLUSTERERS,
                      args.runs, on_record=progress)
    command = (f"python benchmarks/reproduce.py --seeds {args.seeds} --sweep-seeds {args.sweep_seeds} "
               f"--datasets {args.datasets}")
    text = render(registry, all_suites, args.runs, seeds, sweep_seeds, command, machine_line(args.threads),
                  args.output)
    args.output.write_text(text)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
