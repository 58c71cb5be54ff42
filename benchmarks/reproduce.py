"""Reproduce the paper's tables with the committed presets and write docs/results.md.

Usage:
    python benchmarks/reproduce.py [--suite SUITE,...] [--datasets orl,umist,...]
                                   [--seeds 5] [--sweep-seeds 5] [--records benchmarks/records]
                                   [--runs bench-runs] [--threads 2]
    python benchmarks/reproduce.py --report-only      # re-render docs/results.md from stored runs
    python benchmarks/reproduce.py --check            # list the table rows with no stored run (exit 1 if any)

Suites: ``shallow`` (the shallow baselines of Tables 2 and 3, one deterministic run per solver and
dataset), ``dscnet-l1`` (DSCNet-L1), ``ae-ssc`` (SSC on the Stage I autoencoder's features),
``s2convscn`` (S2ConvSCN-L2/-L1), ``dasc`` (DASC, the ``dasc-*`` presets),
``dscnet`` (the DSC-Net-L2 recipe, ``dscnet-*`` presets, beside the reference implementation's
measured figures in benchmarks/reference-dscnet.toml), ``parity`` (the same recipe with Stage I as long
as in the reference's side-by-side runs), ``dscnet-as-reference`` (that, on ORL and COIL20 read as
DSC-Net's code reads the files, so each seed starts from the reference's own weights), ``main``
(DSCSC, Tables 2 and 3), ``precision`` (the Yale B preset in the precision it does not use, bf16 or
fp32, beside it), ``table4`` (ORL module ablation), ``table4-umist`` (the same ablation on UMIST,
not in the paper, with the augmented view alone as a fourth row) and ``fig3`` (ORL, ACC versus k). Every
(configuration, seed) trains once and is scored by both clusterers on the same C:
`spectral` on A = ½(|C| + |Cᵀ|) as the paper describes, and `dsc-post` (DSC-Net's post-processing).
Each finished run leaves a small JSON record under --records (benchmarks/records, committed: the
report is rendered from it, and it outlives the machine that measured it) and is reused, not re-run.
Every finished Stage I is kept under --runs/stage1 (weights: not committed) and shared, so an
interrupted reproduction resumes where it stopped and the ablations pay for Stage I once. Ctrl-C (or
SIGTERM) stops the run in progress at the end of its current step and keeps a checkpoint
(--runs/checkpoints); the same command later continues that run from there. The dataset files are
read from the data root (--data-root, else $DSCSC_DATA).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tomllib
from pathlib import Path

import torch

from dscsc_core.evaluation.repeats import BenchCase, RecordStore, run_bench, summarise
from dscsc_core.plugin_api.registry import Registry, load_registry
from dscsc_core.run.pipeline import resolve_config
from dscsc_core.run.recipe import Recipe
from dscsc_core.run.threads import use_cpu_threads
from dscsc_core.settings import PRECISIONS
from dscsc_core.training.checkpoint import TrainingInterrupted, stop_requests

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
REFERENCE = HERE / "reference-dscnet.toml"
# The hand-written part of docs/results.md, and the dated lab notebook it links to (never appended to the page).
DIFFERENCES = HERE / "results-differences.md"
NOTEBOOK = HERE / "notebook.md"
CLUSTERERS = ("spectral", "dsc-post")
# The paper's five datasets: the DSCSC preset of each and the DSC-Net recipe it builds on.
MAIN_DATASETS = ("orl", "yaleb-2432", "umist", "mnist1000", "coil20")
DSCNET_OF = {"orl": "dscnet-orl", "yaleb-2432": "dscnet-yaleb", "umist": "dscnet-umist",
             "mnist1000": "dscnet-mnist1000", "coil20": "dscnet-coil20"}
# DSC-Net's reference reads these files' rows row-major, so its images are transposed; the recipe on the same
# reading (the generic `mat` source, order=row) starts from the same draws for the same seed as the reference.
REFERENCE_READING = {"orl": "orl/ORL_32x32.mat", "coil20": "coil20/COIL20.mat"}
TIME_TARGET_S = {"orl": 120, "umist": 180, "mnist1000": 300, "coil20": 300, "yaleb-2432": 1800}
FULL_BATCH = {"pretrain_batch_size": 0}  # DSC-Net's Stage I: one full-batch step per epoch
SWEEP_K = (0, 5, 10, 15, 20, 25, 30)
# Presets also measured in the other precision: bf16 autocast halves Yale B's middle layers on a CPU
# with native bf16, and its 30-minute target turns on it.
PRECISION_DATASETS = ("yaleb-2432",)
DEFAULT_SUITES = ("shallow", "dscnet-l1", "ae-ssc", "s2convscn", "dasc", "dscnet", "parity", "dscnet-as-reference",
                  "main", "precision", "table4", "table4-umist", "fig3")
# Tables 2 and 3 of the paper as printed: (ACC, NMI) % per method and dataset, None for its dashes.
PAPER_TABLES: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "LRSC": {"orl": (67.75, 80.82), "yaleb-2432": (67.43, 77.19), "umist": (67.29, 74.98),
             "mnist1000": (51.40, 55.76), "coil20": (74.16, 84.52)},
    "SSC": {"orl": (67.00, 82.06), "yaleb-2432": (62.54, 86.04), "umist": (69.04, 74.89),
            "mnist1000": (45.30, 47.09), "coil20": (86.31, 88.92)},
    "EnSC": {"orl": (69.25, 82.20), "yaleb-2432": (61.14, 82.43), "umist": (69.31, 75.69),
             "mnist1000": (49.83, 54.95), "coil20": (87.60, 89.52)},
    "EDSC": {"orl": (70.38, 77.99), "yaleb-2432": (84.99, 86.36), "umist": (69.37, 75.22),
             "mnist1000": (56.50, 57.52), "coil20": (83.71, 88.28)},
    "LSR": {}, "LRR": {},  # in the list, not in the paper's tables
    "AE+SSC": {"orl": (74.50, 88.24), "yaleb-2432": (74.75, 77.64), "umist": (70.42, 75.15),
               "mnist1000": (48.40, 53.37), "coil20": (87.11, 89.90)},
    "SSC-OMP": {"orl": (71.00, 79.52), "yaleb-2432": (73.72, 78.03), "umist": (64.38, 70.68),
                "mnist1000": (34.00, 32.72), "coil20": (64.10, 74.12)},
    "KSSC": {"orl": (71.43, 80.70), "yaleb-2432": (69.21, 73.59), "umist": (65.31, 73.77),
             "mnist1000": (52.20, 56.23), "coil20": (70.87, 82.43)},
    "DSCNet-L1": {"orl": (85.50, 90.23), "yaleb-2432": (96.81, 96.87), "umist": (72.42, 75.56),
                  "mnist1000": (72.80, 72.17), "coil20": (93.05, 93.53)},
    "DSCNet-L2": {"orl": (86.00, 90.34), "yaleb-2432": (97.33, 97.03), "umist": (73.12, 76.62),
                  "mnist1000": (75.00, 73.19), "coil20": (94.86, 94.08)},
    "DASC": {"orl": (88.25, 93.15), "yaleb-2432": (98.56, 98.01), "umist": (76.88, 80.42),
             "mnist1000": (80.40, 78.00), "coil20": (96.39, 96.86)},
    "S2ConvSCN-L1": {"orl": (89.50, None), "yaleb-2432": (98.48, None), "coil20": (97.86, None)},
    "S2ConvSCN-L2": {"orl": (88.75, None), "yaleb-2432": (98.44, None), "coil20": (97.67, None)},
    "DSCSC": {"orl": (90.75, 94.44), "yaleb-2432": (98.64, 98.15), "umist": (81.75, 85.42),
              "mnist1000": (85.12, 82.12), "coil20": (97.88, 97.42)},
}
PAPER_TABLE_DATASETS = {"Table 2": ("orl", "yaleb-2432", "umist"), "Table 3": ("mnist1000", "coil20")}
# The shallow rows: solver plugin and its parameters (defaults: the methods' reference codes, see
# `dscsc plugins show`). A solver is deterministic, so each runs once (seed 0 for the clusterers).
SHALLOW_METHODS = (
    ("LRSC", "lrsc", {}), ("SSC", "ssc", {}), ("EnSC", "ensc", {}),
    ("EDSC", "lsr", {"diagonal": "free"}), ("LSR", "lsr", {}), ("LRR", "lrr", {}),
    ("SSC-OMP", "ssc-omp", {}), ("KSSC", "kssc", {}),
)
SHALLOW_SEEDS = range(1)
# Methods whose C is sparse by construction: SSC, EnSC and KSSC solve an l1 (elastic-net) program, SSC-OMP keeps
# k greedy atoms per sample, AE+SSC is SSC on the autoencoder's features. DSC-Net's post-processing (`dsc-post`:
# SVD of C, d·K+1 directions, a power of the normalised rows) is built for the dense C a self-expression layer
# learns, and on most datasets it turns a sparse one into near-chance labels, so the paper-layout tables print
# "n/a" for these methods under `dsc-post`. The list is declared from what each method computes, never from its
# scores (on MNIST-1000 some of them score well with it); the `spectral` tables hold their numbers.
SPARSE_C_METHODS = ("SSC", "EnSC", "SSC-OMP", "KSSC", "AE+SSC")
DENSE_POST_NOTE = ("n/a: `dsc-post` is built for the dense C a self-expression layer learns, not for the sparse C "
                   f"of {', '.join(SPARSE_C_METHODS[:-1])} and {SPARSE_C_METHODS[-1]}, so they are not scored "
                   "with it; for them read the `spectral` table.")
S2CONVSCN_OF = {name: preset.replace("dscnet-", "s2convscn-") for name, preset in DSCNET_OF.items()}
DASC_OF = {name: preset.replace("dscnet-", "dasc-") for name, preset in DSCNET_OF.items()}
# Table 4 of the paper (ORL, ACC / NMI %): its rows, as presets and the overrides that remove a module.
TABLE4 = (
    ("DRH", "dscnet-orl", {}, (86.00, 90.34)),
    ("DRH+SCH", "orl", {"augment": "none"}, (87.00, 92.10)),
    ("Augmentation+DRH+SCH", "orl", {}, (90.75, 94.44)),
)
# The same ablation on UMIST (not in the paper), where DSCSC once fell below its base: what each module does.
TABLE4_UMIST = (
    ("umist DRH", "dscnet-umist", {}, None),
    ("umist DRH+SCH", "umist", {"augment": "none"}, None),
    ("umist Augmentation+DRH", "umist", {"beta": 0.0}, None),
    ("umist Augmentation+DRH+SCH", "umist", {}, None),
)


# The suites whose cases are rows of Tables 2 and 3 (method x dataset), and the table the other suites fill:
# how `--check` names a row that has no stored record.
PAPER_TABLE_SUITES = ("shallow", "dscnet-l1", "ae-ssc", "s2convscn", "dasc", "dscnet", "main")
SUITE_TABLES = {"parity": "Parity", "dscnet-as-reference": "Parity", "precision": "Precision", "table4": "Table 4",
                "table4-umist": "Table 4 on UMIST", "fig3": "Figure 3"}


def suite_seeds(suite: str, seeds: range, sweep_seeds: range) -> range:
    """The seeds a suite runs: Figure 3 its own count, the deterministic shallow solvers one."""
    return {"fig3": sweep_seeds, "shallow": SHALLOW_SEEDS}.get(suite, seeds)


def table_row(suite: str, case: str) -> str:
    """The table and row of the page that a suite's case fills."""
    if suite in PAPER_TABLE_SUITES:
        dataset_of = {preset: name for name, preset in DSCNET_OF.items()}
        method, dataset = {"dscnet": ("DSCNet-L2", dataset_of.get(case, case)),
                           "main": ("DSCSC", case)}.get(suite, case.rpartition(" ")[::2])
        table = next((title for title, names in PAPER_TABLE_DATASETS.items() if dataset in names), "Tables 2 and 3")
        return f"{table}, {dataset}: {method}"
    return f"{SUITE_TABLES.get(suite, suite)}: {case}"


def missing_rows(registry: Registry, all_suites, store: RecordStore, names, seeds: range,
                 sweep_seeds: range) -> tuple[list[str], int]:
    """One line per table row (a suite's case) with no stored record for some seed it needs, for the presets
    as they stand; and how many rows were checked."""
    lines, checked = [], 0
    for suite in names:
        wanted = suite_seeds(suite, seeds, sweep_seeds)
        for case in all_suites[suite]:
            checked += 1
            fingerprint = case.fingerprint(registry)
            absent = [str(seed) for seed in wanted if store.find(case, fingerprint, seed) is None]
            if absent:
                lines.append(f"{table_row(suite, case.name)}: no stored record for seed{'s' * (len(absent) > 1)} "
                             f"{', '.join(absent)} (suite {suite}, case '{case.name}', fingerprint {fingerprint[:12]})")
    return lines, checked


def preset_case(registry: Registry, name: str, overrides: dict | None = None, label: str | None = None,
                data_root: str | None = None) -> BenchCase:
    layers = Recipe(name).layers(registry, *([overrides] if overrides else []),
                                 *([{"data_root": data_root}] if data_root else []))
    return BenchCase(label or name, tuple(layers))


def suites(registry: Registry, datasets, data_root) -> dict[str, list[BenchCase]]:
    budget = reference_stage1_steps()
    return {
        "dscnet": [preset_case(registry, DSCNET_OF[name], data_root=data_root) for name in datasets],
        "main": [preset_case(registry, name, data_root=data_root) for name in datasets],
        # The recipe with the Stage I of the reference's side-by-side runs (its length, full-batch steps).
        "parity": [preset_case(registry, DSCNET_OF[name], {"pretrain_epochs": budget[name], **FULL_BATCH},
                               parity_case_name(name), data_root) for name in datasets if name in budget],
        "dscnet-as-reference": [preset_case(registry, DSCNET_OF[name], {
            "dataset": "mat", "pretrain_epochs": budget[name], **FULL_BATCH,
            "params": {"dataset": {"path": REFERENCE_READING[name], "order": "row"}}}, reference_reading_case(name),
            data_root) for name in datasets if name in REFERENCE_READING and name in budget],
        "precision": [precision_case(registry, name, data_root) for name in datasets if name in PRECISION_DATASETS],
        "table4": [preset_case(registry, preset, overrides or None, row, data_root)
                   for row, preset, overrides, _ in TABLE4],
        "table4-umist": [preset_case(registry, preset, overrides or None, row, data_root)
                         for row, preset, overrides, _ in TABLE4_UMIST],
        "fig3": [preset_case(registry, "orl", {"params": {"miner": {"k": k}}}, f"orl k={k}", data_root)
                 for k in SWEEP_K],
        # On each dataset's DSC-Net recipe (its data and clusterer settings); the solver replaces training.
        "shallow": [preset_case(registry, DSCNET_OF[name], {"solver": solver, "params": {"solver": params}},
                                f"{method} {name}", data_root)
                    for name in datasets for method, solver, params in SHALLOW_METHODS],
        "dscnet-l1": [preset_case(registry, DSCNET_OF[name], {"regularizer": "l1"}, f"DSCNet-L1 {name}", data_root)
                      for name in datasets],
        # S2ConvSCN-L2 / -L1 on every dataset (the paper reports ORL, Yale B, COIL20); the recipe's Stage I is reused.
        "s2convscn": [preset_case(registry, S2CONVSCN_OF[name], overrides, f"S2ConvSCN-{norm} {name}",
                                  data_root)
                      for name in datasets
                      for norm, overrides in (("L2", None), ("L1", {"regularizer": "l1"}))],
        # DASC on every dataset (the recipe's Stage I is reused).
        "dasc": [preset_case(registry, DASC_OF[name], None, f"DASC {name}", data_root) for name in datasets],
        # SSC on the features of the recipe's own Stage I autoencoder (stored Stage I runs are reused).
        "ae-ssc": [preset_case(registry, DSCNET_OF[name], {"solver": "ssc", "solver_input": "features"},
                               f"AE+SSC {name}", data_root) for name in datasets],
    }


def own_precision(registry: Registry, preset: str) -> str:
    return resolve_config(registry, *Recipe(preset).layers(registry)).precision


def other_precision(precision: str) -> str:
    return next(other for other in PRECISIONS if other != precision)


def precision_case(registry: Registry, preset: str, data_root: str | None) -> BenchCase:
    """The preset with the one setting changed: the precision it does not use."""
    other = other_precision(own_precision(registry, preset))
    return preset_case(registry, preset, {"precision": other}, f"{preset} {other}", data_root)


def reference_stage1_steps() -> dict[str, int]:
    """Each dataset's Stage I length in the reference's side-by-side runs: the parity rows train as long."""
    return {name: int(figures["stage1_steps"]) for name, figures in reference_figures().get("from_scratch", {}).items()}


def parity_case_name(dataset: str) -> str:
    return f"{DSCNET_OF[dataset]}, Stage I as long as the reference's"


def reference_reading_case(dataset: str) -> str:
    return f"{DSCNET_OF[dataset]}, images as DSC-Net reads them"


def machine_line(threads: int) -> str:
    return (f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} CPU cores, "
            f"{threads} CPU threads (torch and BLAS), "
            f"torch {torch.__version__}, Python {platform.python_version()}, "
            f"device {'cuda' if torch.cuda.is_available() else 'cpu'}")


def stored(registry: Registry, store: RecordStore, cases: list[BenchCase], seeds: range):
    records = []
    for case in cases:
        fingerprint = case.fingerprint(registry)
        records += [record for seed in seeds if (record := store.find(case, fingerprint, seed)) is not None]
    return records


def with_spread(mean: str, spread: float, runs: int) -> str:
    # One run has no spread to show: a "± 0.00" there would read as a measured one.
    return f"{mean} ± {spread:.2f}" if runs > 1 else mean


def cell(summary, metric: str) -> str:
    return with_spread(f"{100 * summary.mean[metric]:.2f}", 100 * summary.std[metric], len(summary.seeds))


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return with_spread(f"{statistics.mean(values):.2f}", spread, len(values))


def step_seconds(records, case: str, stage: str) -> str:
    # 0 is no measurement: a run resumed before checkpoints carried a reused Stage I's cost recorded 0 for it.
    values = [r.step_seconds[stage] for r in records if r.case == case and r.step_seconds.get(stage, 0) > 0]
    return f"{statistics.mean(values):.3f}" if values else "-"


def paper_numbers(registry, case: str) -> dict:
    """The paper's ACC / NMI recorded in the preset named ``case``, if there is one."""
    if case not in registry.presets:
        return {}
    return registry.preset(case).read().get("preset", {}).get("paper", {})


def main_table(registry, records, dscnet_records) -> list[str]:
    lines = ["| dataset | clusterer | seeds | ACC % | NMI % | ARI % | s / seed | paper ACC / NMI | ACC gap | "
             "dscnet ACC % (same clusterer) | DSCSC − dscnet, seed by seed |", "|---" * 11 + "|"]
    for clusterer in CLUSTERERS:
        base = {s.case: s for s in summarise(dscnet_records, clusterer)}
        for s in summarise(records, clusterer):
            paper = paper_numbers(registry, s.case)
            gap = f"{100 * s.mean['acc'] - paper['acc']:+.2f}" if paper else "-"
            paper_cell = f"{paper['acc']:.2f} / {paper['nmi']:.2f}" if paper else "-"
            below = base.get(DSCNET_OF.get(s.case, ""))
            paired = paired_difference(records, dscnet_records, s.case, DSCNET_OF.get(s.case, ""), clusterer)
            lines.append(f"| {s.case} | {clusterer} | {len(s.seeds)} | {cell(s, 'acc')} | {cell(s, 'nmi')} | "
                         f"{cell(s, 'ari')} | {s.seconds:.0f} | {paper_cell} | {gap} | "
                         f"{cell(below, 'acc') if below else '-'} | {paired} |")
    return lines


def paired_difference(records, base_records, case: str, base: str, clusterer: str) -> str:
    """ACC points of ``case`` over ``base`` on each seed both have (the same Stage I where they share it):
    mean ± std of the differences, and on how many seeds ``case`` is at least level."""
    def by_seed(rows, name):
        return {r.seed: 100 * r.scores[clusterer]["acc"] for r in rows if r.case == name and clusterer in r.scores}

    ours, theirs = by_seed(records, case), by_seed(base_records, base)
    differences = [ours[seed] - theirs[seed] for seed in sorted(ours.keys() & theirs.keys())]
    if not differences:
        return "-"
    spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
    level = sum(d >= 0 for d in differences)
    mean = round(statistics.mean(differences), 2) + 0.0  # no "-0.00"
    return f"{with_spread(f'{mean:+.2f}', spread, len(differences))} (≥ on {level} of {len(differences)})"


def reference_figures() -> dict:
    if not REFERENCE.is_file():
        return {}
    with REFERENCE.open("rb") as handle:
        return tomllib.load(handle)


def parity_table(records, figures: dict, own_stage1: dict[str, tuple[int, int]]) -> list[str]:
    """The dscnet recipe beside the reference implementation's measured figures at the same Stage I budget,
    then the recipe at its preset's own Stage I where that differs (``own_stage1``: preset -> (epochs, batch)).

    Seconds per step come from the quiet-machine timing in the reference file where it has them
    (the stored runs shared the CPU), else from the runs' own records."""
    quiet, reference = figures.get("dscsc_step_s", {}), figures.get("from_scratch", {})
    batched = figures.get("minibatch_epoch_s", {})
    ours = {s.case: s for s in summarise(records, "dsc-post")}
    lines = ["| dataset | implementation | seeds | ACC % | NMI % | Stage I s / step | Stage II s / step |",
             "|---|---|---|---|---|---|---|"]

    def row(dataset: str, case: str, label: str, batch: int = 0) -> None:
        s, timing = ours[case], quiet.get(dataset)
        epoch = batched.get(dataset, {})
        if batch and epoch.get("batch") == batch:  # a mini-batch Stage I: its epoch, beside a full step on that machine
            stage1 = f"{epoch['epoch']:.3f} an epoch ({epoch['full_batch_step']:.3f} a full-batch step there)"
        elif batch:
            stage1 = step_seconds(records, case, "stage1")
        else:
            stage1 = f"{timing['stage1']:.3f}" if timing else step_seconds(records, case, "stage1")
        stage2 = f"{timing['stage2']:.3f}" if timing else step_seconds(records, case, "stage2")
        lines.append(f"| {dataset} | {label} | {len(s.seeds)} | {cell(s, 'acc')} | {cell(s, 'nmi')} | "
                     f"{stage1} | {stage2} |")

    for dataset, preset in DSCNET_OF.items():
        figures, batch = reference.get(dataset), own_stage1.get(preset, (0, 0))[1]
        if figures:
            steps = figures["stage1_steps"]
            lines.append(f"| {dataset} | reference (XifengGuo/DSC-Net, {steps} AE steps) | "
                         f"{len(figures['acc'])} | {mean_std(figures['acc'])} | {mean_std(figures['nmi'])} | "
                         f"{figures['stage1_step_s']:.3f} | {figures['stage2_step_s']:.3f} |")
            if parity_case_name(dataset) in ours:
                full_batch = " --pretrain-batch-size 0" if batch else ""
                row(dataset, parity_case_name(dataset),
                    f"dscsc `--preset {preset} --pretrain-epochs {steps}{full_batch}`")
            if reference_reading_case(dataset) in ours:
                as_read = ours[reference_reading_case(dataset)]
                lines.append(f"| {dataset} | the same, images as DSC-Net reads them | {len(as_read.seeds)} | "
                             f"{cell(as_read, 'acc')} | {cell(as_read, 'nmi')} | - | - |")
            if own_stage1.get(preset) == (steps, 0):
                continue  # the preset's own runs are the row above
        if preset in ours:
            length = f" (Stage I {stage1_label(*own_stage1[preset])})" if preset in own_stage1 else ""
            row(dataset, preset, f"dscsc `--preset {preset}`{length}", batch)
    return lines


def stage1_schedule(config) -> tuple[int, int]:
    """What a preset's Stage I length means: (epochs, batch size), batch 0 for DSC-Net's full batch."""
    return config.pretrain_epochs, config.pretrain_batch_size


def stage1_label(epochs: int, batch: int) -> str:
    return f"{epochs} steps" if batch == 0 else f"{epochs} epochs in batches of {batch}"


def same_seed_agreement(records, figures: dict) -> list[str]:
    """Per seed, the recipe on DSC-Net's reading of the images against the reference's own runs."""
    reference = figures.get("from_scratch", {})
    lines = []
    for dataset in REFERENCE_READING:
        figures = reference.get(dataset, {})
        by_seed = dict(zip(figures.get("seeds", []), zip(figures.get("acc", []), figures.get("nmi", []), strict=True),
                           strict=True))
        ours = {r.seed: r.scores["dsc-post"] for r in records
                if r.case == reference_reading_case(dataset) and r.seed in by_seed}
        if not ours:
            continue
        equal = [seed for seed, scores in sorted(ours.items())
                 if (round(100 * scores["acc"], 2), round(100 * scores["nmi"], 2)) == by_seed[seed]]
        pairs = ", ".join(f"{100 * ours[seed]['acc']:.2f} / {by_seed[seed][0]:.2f}" for seed in sorted(ours))
        lines.append(f"- {dataset}: the same ACC and NMI (to the reported 0.01 %) as the reference on "
                     f"{len(equal)} of {len(ours)} seeds (ACC ours / reference, seed by seed: {pairs}).")
    return lines


def time_table(records, reference: dict, own_stage1: dict[str, tuple[int, int]],
               precisions: dict[str, str] | None = None) -> list[str]:
    """Seconds per seed against the targets: measured whole on the quiet machine where the reference
    file has it for the preset's present Stage I (``own_stage1``: preset -> (epochs, batch)) and
    precision (``precisions``: preset -> its precision, fp32 when absent; the verdict then follows it),
    else the stored runs' own mean, which shared the CPU."""
    precisions = precisions or {}
    quiet = reference.get("quiet_whole_seed", {})
    lines = ["| dataset | target (one seed, all stages) | stored runs' mean (dsc-post, shared CPU) | "
             "one seed on the quiet machine | met |", "|---|---|---|---|---|"]
    for s in summarise(records, "dsc-post"):
        target = TIME_TARGET_S.get(s.case)
        if target:
            measured = quiet.get(s.case, {})
            timed_with = (measured.get("pretrain_epochs"), measured.get("pretrain_batch_size", 0))
            current = (timed_with == own_stage1.get(s.case)
                       and measured.get("precision", "fp32") == precisions.get(s.case, "fp32"))
            timed = measured.get("seconds") if current else None
            seconds = timed if timed is not None else s.seconds
            lines.append(f"| {s.case} | {target / 60:.0f} min | {s.seconds / 60:.1f} min | "
                         f"{f'{timed / 60:.1f} min' if timed is not None else '-'} | "
                         f"{'yes' if seconds <= target else 'no'} |")
    return lines


def table4(records, rows=TABLE4) -> list[str]:
    post = {s.case: s for s in summarise(records, "dsc-post")}
    spectral = {s.case: s for s in summarise(records, "spectral")}
    lines = ["| modules | preset | seeds | ACC % (dsc-post) | NMI % (dsc-post) | ACC % (spectral) | paper ACC / NMI |",
             "|---|---|---|---|---|---|---|"]
    for row, preset, overrides, paper in rows:
        if row in post:
            s, p = post[row], spectral[row]
            how = f"`{preset}`" + "".join(f" `--{key} {_flag_value(value)}`" for key, value in overrides.items())
            published = "—" if paper is None else f"{paper[0]:.2f} / {paper[1]:.2f}"
            lines.append(f"| {row} | {how} | {len(s.seeds)} | {cell(s, 'acc')} | {cell(s, 'nmi')} | "
                         f"{cell(p, 'acc')} | {published} |")
    return lines


def _flag_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def sweep(records) -> tuple[list[str], list[tuple[int, object, object]]]:
    post = {s.case: s for s in summarise(records, "dsc-post")}
    spectral = {s.case: s for s in summarise(records, "spectral")}
    points = [(k, post[f"orl k={k}"], spectral[f"orl k={k}"]) for k in SWEEP_K if f"orl k={k}" in post]
    lines = ["| k | seeds | ACC % (dsc-post) | NMI % (dsc-post) | ACC % (spectral) |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {len(a.seeds)} | {cell(a, 'acc')} | {cell(a, 'nmi')} | {cell(b, 'acc')} |"
              for k, a, b in points]
    return lines, points


def method_rows(records, dscnet_records, main_records, clusterer: str) -> dict[str, dict[str, object]]:
    """Method -> dataset -> Summary, from the shallow and DSCNet-L1 runs (cases named "METHOD dataset"),
    the dscnet recipe (DSCNet-L2) and the DSCSC presets."""
    rows: dict[str, dict[str, object]] = {}
    for summary in summarise(records, clusterer):
        method, _, dataset = summary.case.rpartition(" ")
        rows.setdefault(method, {})[dataset] = summary
    preset_of = {preset: name for name, preset in DSCNET_OF.items()}
    for summary in summarise(dscnet_records, clusterer):
        rows.setdefault("DSCNet-L2", {})[preset_of[summary.case]] = summary
    for summary in summarise(main_records, clusterer):
        rows.setdefault("DSCSC", {})[summary.case] = summary
    return rows


def paper_layout_table(rows, datasets, clusterer: str = "spectral") -> list[str]:
    """One of the paper's Tables 2/3: per dataset, our mean ± std beside the paper's number ("n/a" for a
    sparse-C method under `dsc-post`, see SPARSE_C_METHODS)."""
    head = "| method | " + " | ".join(f"{d} ACC % (paper) | {d} NMI % (paper) | {d} runs, s / run" for d in datasets)
    lines = [head + " |", "|---" * (1 + 3 * len(datasets)) + "|"]
    for method, paper in PAPER_TABLES.items():
        not_applicable = clusterer == "dsc-post" and method in SPARSE_C_METHODS
        cells = []
        for dataset in datasets:
            ours = rows.get(method, {}).get(dataset)
            printed = paper.get(dataset, (None, None))
            for index, metric in enumerate(("acc", "nmi")):
                mine = "n/a" if not_applicable else cell(ours, metric) if ours else "not run"
                theirs = f"{printed[index]:.2f}" if printed[index] is not None else "—"
                cells.append(f"{mine} ({theirs})")
            cells.append(f"{len(ours.seeds)}, {ours.seconds:.0f}" if ours else "-")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def paper_tables(baseline_records, dscnet_records, main_records) -> list[str]:
    lines = []
    for clusterer in CLUSTERERS:
        rows = method_rows(baseline_records, dscnet_records, main_records, clusterer)
        for title, datasets in PAPER_TABLE_DATASETS.items():
            note = [DENSE_POST_NOTE, ""] if clusterer == "dsc-post" else []
            lines += [f"### {title}, clusterer `{clusterer}`", "", *paper_layout_table(rows, datasets, clusterer), "",
                      *note]
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


def render(registry, all_suites, store: RecordStore, seeds: range, sweep_seeds: range, command: str, machine: str,
           output: Path, options: str = "") -> str:
    """The page. ``options`` are the command-line options that select what it shows (seeds, datasets), for the
    commands of its "How to regenerate" section."""
    def records(suite: str, wanted: range = seeds):
        return stored(registry, store, all_suites[suite], wanted)

    configs = {preset: resolve_config(registry, *Recipe(preset).layers(registry))
               for preset in (*DSCNET_OF.values(), *DSCNET_OF)}
    own_stage1 = {preset: stage1_schedule(config) for preset, config in configs.items()}
    precisions = {preset: config.precision for preset, config in configs.items()}
    reference = reference_figures()
    main_records, dscnet_records = records("main"), records("dscnet")
    parts = [
        "# Reproduction results", "",
        "Generated by `benchmarks/reproduce.py` from stored runs; do not edit by hand (\"Where we differ from the "
        f"paper\" comes from `benchmarks/{DIFFERENCES.name}`, the reference implementation's figures from "
        "`benchmarks/reference-dscnet.toml`). Mean ± sample std over seeds 0..N-1, final epoch, never a best run "
        "or best epoch. Both clusterers score the same learned C.", "",
        f"- Command: `{command}`", f"- Machine: {machine}",
        f"- The dated lab notebook behind these numbers: [benchmarks/{NOTEBOOK.name}](../benchmarks/{NOTEBOOK.name})",
        "",
        *differences_section(),
        *parity_section(dscnet_records, records("parity") + records("dscnet-as-reference"), reference, own_stage1),
        *main_section(registry, main_records, dscnet_records),
        *every_method_section(records("shallow", SHALLOW_SEEDS) + records("dscnet-l1") + records("ae-ssc")
                              + records("s2convscn") + records("dasc"), dscnet_records, main_records),
        "## Time per seed", "", *time_table(main_records, reference, own_stage1, precisions), "",
        *precision_section(main_records, records("precision"), precisions),
        *table4_sections(records("table4"), records("table4-umist")),
        *sweep_section(records("fig3", sweep_seeds), output.parent / "figures" / "orl-k-sweep.png"),
        *regenerate_section(options),
    ]
    return "\n".join(parts)


def differences_section() -> list[str]:
    """The hand-written part of the page: where and why our numbers differ from the paper's."""
    return [DIFFERENCES.read_text().strip(), ""] if DIFFERENCES.is_file() else []


def regenerate_section(options: str) -> list[str]:
    script = "python benchmarks/reproduce.py"
    options = f" {options}" if options else ""
    return [
        "## How to regenerate these tables", "",
        "Re-render this page from the stored records in `benchmarks/records/` (no training, seconds), and list "
        "every table row that has no stored record for the presets as they stand (one line each, exit status 1; "
        "a changed preset setting moves its fingerprint and leaves its rows without records):", "",
        "```bash",
        f"{script} --report-only{options}",
        f"{script} --check{options}",
        "```", "",
        "Re-run rows: point `DSCSC_DATA` (or `--data-root`) at the benchmark files ([data.md](data.md)) and name "
        "the suites and datasets; finished runs are reused, each new one leaves a record under "
        "`benchmarks/records/` (commit it), and Ctrl-C stops after the current step, the same command continuing "
        "from there:", "",
        "```bash",
        "python benchmarks/reproduce.py --suite main,dscnet --datasets umist --seeds 5 --threads 1",
        "python benchmarks/reproduce.py --suite shallow,dscnet-l1 --datasets orl,umist --threads 1",
        "python benchmarks/reproduce.py --threads 1          # every suite on every dataset",
        "```", "",
        "The suites and what each measures: [benchmarks.md](benchmarks.md).", "",
    ]


def parity_section(dscnet_records, as_read_records, reference: dict, own_stage1) -> list[str]:
    agreement = same_seed_agreement(as_read_records, reference)
    return [
        "## Parity: the dscnet recipe against DSC-Net's reference implementation", "",
        *parity_table(dscnet_records + as_read_records, reference, own_stage1), "",
        *([f"Reference figures: {reference['measured']}", ""] if "measured" in reference else []),
        *(["Same seed, same images: DSC-Net's code reshapes each .mat row row-major, so it trains on transposed "
           "images, and draws its layers' starting weights from `torch.manual_seed(seed)` in the order dscsc does. "
           "The recipe run on that reading (the generic `mat` source, `order = row`) starts from the reference's "
           "weights for the same seed (`tests/test_dscnet_parity.py`); where the two end up:", "", *agreement, ""]
          if agreement else []),
    ]


def main_section(registry, main_records, dscnet_records) -> list[str]:
    return [
        "## Tables 2 and 3: DSCSC on every dataset, both clusterers", "",
        *main_table(registry, main_records, dscnet_records), "",
        "ACC gap = our mean ACC minus the paper's DSCSC ACC (percentage points). The dscnet column is the "
        "`dscnet-*` recipe (DSCSC without SCH and augmentation) on the same seeds and clusterer; the last "
        "column pairs the two seed by seed (each seed's DSCSC starts Stage II from the recipe's own Stage I "
        "autoencoder), in ACC points: the mean ± std of the differences, and on how many seeds DSCSC is at "
        "least level.", "",
    ]


def every_method_section(baseline_records, dscnet_records, main_records) -> list[str]:
    return [
        "## Tables 2 and 3 in the paper's layout: every method", "",
        "Ours as mean ± std over seeds (runs column), the paper's number in brackets; a single run has no ±. "
        "Shallow solvers are deterministic: one run each (seed 0 for the clusterer's k-means). DSCNet-L2 is "
        "the `dscnet-*` recipe, DSCNet-L1 the same with `--regularizer l1`, AE+SSC is `ssc` on the features of "
        "the recipe's Stage I autoencoder (`--solver ssc --solver-input features`), S2ConvSCN the `s2convscn-*` "
        "presets (L1: `--regularizer l1`), DASC the `dasc-*` presets, DSCSC the main presets. "
        "\"not run\": no stored run yet (see the notebook).", "",
        *paper_tables(baseline_records, dscnet_records, main_records),
    ]


def precision_section(main_records, precision_records, precisions: dict[str, str]) -> list[str]:
    """The preset beside the same settings in the other precision, seed by seed."""
    if not precision_records:
        return []
    both = main_records + precision_records
    post = {s.case: s for s in summarise(both, "dsc-post")}
    spectral = {s.case: s for s in summarise(both, "spectral")}
    lines = ["| run | precision | seeds | ACC % (dsc-post) | ACC % (spectral) | s / Stage I epoch | "
             "s / Stage II step | ACC − the preset's, seed by seed (dsc-post) |", "|---" * 8 + "|"]
    for name in PRECISION_DATASETS:
        own = precisions.get(name, "fp32")
        other = other_precision(own)
        for case, precision in ((name, own), (f"{name} {other}", other)):
            if case in post:
                paired = "-" if case == name else paired_difference(both, both, case, name, "dsc-post")
                lines.append(f"| {case} | {precision} | {len(post[case].seeds)} | {cell(post[case], 'acc')} | "
                             f"{cell(spectral[case], 'acc')} | {step_seconds(both, case, 'stage1')} | "
                             f"{step_seconds(both, case, 'stage2')} | {paired} |")
    return ["## Precision: the Yale B preset in bf16 and in fp32", "",
            "`precision = \"bf16\"` runs the encoder and decoder under bfloat16 autocast; C, the head and every "
            "loss stay fp32. Each run trains its own Stage I in its precision. Seconds are the records' own "
            "(threads and what else ran: see the notebook). The five bf16 records were re-run on 2026-12-01, when "
            "a Stage I beside a non-default head took the default head's shuffles (\"Stage I shared across "
            "head sizes\" in the notebook).",
            "", *lines, ""]


def table4_sections(orl_records, umist_records) -> list[str]:
    umist = (["## Table 4 on UMIST (not in the paper)", "",
              "The same rows on UMIST, plus the augmented view without SCH (`--beta 0`): what each module "
              "does on the dataset where DSCSC once fell below its base.", "",
              *table4(umist_records, TABLE4_UMIST), ""] if umist_records else [])
    return ["## Table 4: module ablation on ORL", "", *table4(orl_records), "", *umist]


def sweep_section(records, figure: Path) -> list[str]:
    """Figure 3's table, and its plot beside the report when there are points to draw."""
    sweep_lines, points = sweep(records)
    plotted = bool(points) and plot_sweep(points, figure)
    picture = ["![ACC versus k on ORL](figures/orl-k-sweep.png)", ""] if plotted else []
    return ["## Figure 3: ACC versus k on ORL", "", *sweep_lines, "", *picture]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=",".join(DEFAULT_SUITES))
    parser.add_argument("--datasets", default=",".join(MAIN_DATASETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sweep-seeds", type=int, default=5)
    parser.add_argument("--records", type=Path, default=HERE / "records",
                        help="folder of run records (committed; the report is rendered from them)")
    parser.add_argument("--runs", type=Path, default=Path("bench-runs"),
                        help="folder of Stage I weights and checkpoints (not committed)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--check", action="store_true",
                        help="run nothing, render nothing: list every table row of --suite without a stored record "
                             "for the presets as they stand (exit status 1 if there is one)")
    parser.add_argument("--output", type=Path, default=DOCS / "results.md")
    args = parser.parse_args()
    names = [suite for suite in args.suite.split(",") if suite]
    if unknown := [suite for suite in names if suite not in DEFAULT_SUITES]:
        parser.error(f"unknown suite {', '.join(unknown)}; choose from {', '.join(DEFAULT_SUITES)}")
    use_cpu_threads(args.threads)
    registry = load_registry(strict=True)
    all_suites = suites(registry, [d for d in args.datasets.split(",") if d], args.data_root)
    seeds, sweep_seeds = range(args.seeds), range(args.sweep_seeds)

    if args.check:
        missing, checked = missing_rows(registry, all_suites, RecordStore(args.records), names, seeds, sweep_seeds)
        print("\n".join(missing) if missing else
              f"all {checked} table rows of suites {','.join(names)} have their stored records under {args.records} "
              f"(seeds 0-{args.seeds - 1}{f', Figure 3 seeds 0-{args.sweep_seeds - 1}' * ('fig3' in names)})",
              flush=True)
        if missing:
            sys.exit(f"{len(missing)} of {checked} table rows have no stored record for the presets as they stand: "
                     "re-run them (--suite ... --datasets ...) or restore the settings they were run with")
        return

    def progress(record, reused):
        print(record.progress_line(reused), flush=True)

    if not args.report_only:
        with stop_requests() as stop:
            for suite in names:
                try:
                    run_bench(registry, all_suites[suite], suite_seeds(suite, seeds, sweep_seeds), CLUSTERERS,
                              args.runs, on_record=progress, should_stop=stop.is_set, records_folder=args.records)
                except TrainingInterrupted as stopped:
                    sys.exit(f"stopped: {stopped}; the same command continues it")
    options = (f"--seeds {args.seeds} --sweep-seeds {args.sweep_seeds} --datasets {args.datasets} "
               f"--threads {args.threads}")
    command = f"python benchmarks/reproduce.py {options}"
    store = RecordStore(args.records)
    if not len(store):
        sys.exit(f"no run records under {args.records}: nothing to render ({args.output} left as it is)")
    text = render(registry, all_suites, store, seeds, sweep_seeds, command, machine_line(args.threads),
                  args.output, options)
    args.output.write_text(text)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
