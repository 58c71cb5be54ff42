"""Repeated runs for benchmarks and ablations: configurations x seeds, cached, summarised over seeds.

Each (case, seed) trains once and is scored by several clusterers on the same C, so "spectral on
A" and "dsc-post" are compared on identical training. Finished runs are stored as one JSON file
each (written atomically) and are not re-run when the same settings and seed are asked for again,
whatever case name they were stored under: a run is identified by the resolved settings that
shape training (not by a preset's descriptive metadata, nor by the code version).
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dscsc_core.errors import DataError
from dscsc_core.evaluation.tuning import Criterion
from dscsc_core.files import atomic_write_text, make_folder
from dscsc_core.metrics import SCORES
from dscsc_core.plugin_api.registry import Registry
from dscsc_core.run.identity import record_fingerprint, settings_fingerprint, solves_pixels
from dscsc_core.run.outputs import CHECKPOINT
from dscsc_core.run.pipeline import LoadedDatasets, execute, prepare, resolve_config
from dscsc_core.run.results import RunResult
from dscsc_core.training.checkpoint import Checkpoint

STAGE1_FOLDER = "stage1"  # beside the run records: finished Stage I runs that later cases share
# Beside the run records: runs stopped part way (SIGINT/SIGTERM through ``should_stop``), continued by the next
# run_bench that asks for the same case and seed, so a long run (Yale B on a CPU) can span several sittings.
CHECKPOINT_FOLDER = "checkpoints"


@dataclass(frozen=True)
class BenchCase:
    """One configuration to repeat over seeds: config layers (e.g. a preset, then overrides)."""

    name: str
    layers: tuple[dict[str, Any], ...]
    group: str = ""

    def fingerprint(self, registry: Registry) -> str:
        return settings_fingerprint(resolve_config(registry, *self.layers))


@dataclass
class BenchRecord:
    case: str
    group: str
    seed: int
    fingerprint: str
    train_s: float
    scores: dict[str, dict[str, float]]  # clusterer -> {acc, nmi, ari, seconds}
    config: dict[str, Any] = field(default_factory=dict)
    feature_scale: dict[str, float] = field(default_factory=dict)  # see TrainingResult.feature_scale
    # The label-free criteria of ``dscsc tune`` on the run's own clusters (cosine silhouette on the
    # input pixels; subspace fit with the clusterer's dim), so a bench run also serves as a tuning
    # candidate; None in older records.
    silhouette: float | None = None
    subspace_fit: float | None = None
    # The run's own predicted labels, so a later criterion can score it without training again.
    labels: list[int] | None = None
    # Seconds per full-batch step of each stage (Stage I as it cost when it ran, also when reused).
    step_seconds: dict[str, float] = field(default_factory=dict)
    # Digest of the images and labels the run was made on (``identity.data_digest``); None in records made
    # before 2026-12-07, which bench, ablate and tune therefore never reuse (they run such a case again).
    data: str | None = None
    # What Stage II did, measured (``TrainingResult.stage2_measures``: the encoder's relative movement, β when
    # sch_gradient_ratio set it); empty in older records.
    stage2_measures: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def progress_line(self, reused: bool) -> str:
        """One line for a progress log: what ran (or was reused), its ACC per clusterer and its time."""
        scores = ", ".join(f"{name} acc {score['acc']:.4f}" for name, score in self.scores.items())
        return f"{'reused' if reused else 'ran'} {self.case} seed {self.seed}: {scores} ({self.train_s:.0f} s)"


def record_path(folder: Path, case: BenchCase, seed: int, fingerprint: str) -> Path:
    # The settings are in the file name, so a case whose settings change (an edited preset) adds a
    # record beside the old one instead of overwriting it.
    return folder / case.group / case.name / f"seed{seed}-{fingerprint[:12]}.json"


def _read_record(path: Path) -> dict[str, Any] | None:
    """The stored record at ``path`` as a dict, or None when it is unreadable or not a record."""
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and {"fingerprint", "seed"} <= set(data) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def record_json(data: dict[str, Any]) -> str:
    """A record as indented JSON with its predicted labels on one line: records are meant to be
    committed beside the report they feed, and one line per label would make a Yale B record 2432 lines."""
    text = json.dumps({**data, "labels": None}, indent=2, default=str)
    if data.get("labels") is None:
        return text + "\n"
    labels = json.dumps(data["labels"], separators=(",", ":"))
    return text.replace('"labels": null', f'"labels": {labels}', 1) + "\n"


class RecordStore:
    """The stored runs under one folder, found by (settings fingerprint, seed) under any case name.

    A case stored under another name (the main ORL row and Table 4's full model, or an ablation
    that a preset later adopted) is reused and reported under the name asked for. Every file is
    read once, when the store is opened.
    """

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        # (fingerprint, seed) -> {path: record data}, files in sorted order.
        self._stored: dict[tuple[str, int], dict[Path, dict[str, Any]]] = {}
        for path in sorted(self.folder.glob("**/seed*.json")):
            data = _read_record(path)
            if data is not None:
                if solves_pixels(data.get("config") or {}):
                    # Stored before the training settings left a pixel solver's fingerprint: found by what it read.
                    data["fingerprint"] = record_fingerprint(data["config"])
                self._stored.setdefault((str(data["fingerprint"]), int(data["seed"])), {})[path] = data

    def __len__(self) -> int:
        return sum(len(paths) for paths in self._stored.values())

    def find(self, case: BenchCase, fingerprint: str, seed: int, data: str | None = None) -> BenchRecord | None:
        """The case's own record if stored, else the same settings and seed stored under another name. With
        ``data`` (the digest of the data as loaded now), only a record made on exactly that data: one made on
        other data, or before records carried their data's digest, is not this run's."""
        stored = {path: record for path, record in self._stored.get((fingerprint, seed), {}).items()
                  if data is None or record.get("data") == data}
        own = record_path(self.folder, case, seed, fingerprint)
        path = own if own in stored else next(iter(stored), None)
        if path is None:
            return None
        record = BenchRecord(**stored[path])
        record.case, record.group = case.name, case.group
        return record

    def save(self, case: BenchCase, record: BenchRecord) -> None:
        path = record_path(self.folder, case, record.seed, record.fingerprint)
        make_folder(path.parent)
        data = record.to_dict()
        atomic_write_text(path, record_json(data))
        self._stored.setdefault((record.fingerprint, record.seed), {})[path] = data


def run_case(registry: Registry, case: BenchCase, seed: int, clusterers: Iterable[str],
             stage1_cache: Path | str | None = None, datasets: LoadedDatasets | None = None,
             checkpoint_dir: Path | str | None = None, should_stop: Callable[[], bool] | None = None) -> BenchRecord:
    """Train ``case`` once with ``seed`` (reusing a stored Stage I from ``stage1_cache``) and score
    every clusterer on the learned C. The case's own clusterer keeps its configured parameters;
    another one gets its defaults. With ``checkpoint_dir`` a run that ``should_stop`` stops leaves a
    checkpoint there (TrainingInterrupted is raised), and a checkpoint found there is continued."""
    prepared = prepare(resolve_config(registry, *case.layers, {"seed": seed}), registry, datasets=datasets)
    if prepared.data.labels is None:
        raise DataError(f"benchmark case '{case.name}' needs a labelled dataset; '{prepared.data.name}' has no labels")
    names = list(clusterers)
    extra = {name: registry.create("clusterer", name) for name in names if name != prepared.config.clusterer}
    checkpoint_file = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    resume = Checkpoint.load(checkpoint_file) if checkpoint_file is not None and checkpoint_file.is_file() else None
    result = execute(prepared, stage1_cache=stage1_cache, clusterers=extra, checkpoint_dir=checkpoint_dir,
                     resume=resume, should_stop=should_stop)
    scores = {name: {**result.clusterings[name].scores, "seconds": result.clusterings[name].seconds} for name in names}
    return BenchRecord(case.name, case.group, seed, settings_fingerprint(prepared.config), result.timings.train_s,
                       scores, result.summary["config"], result.summary["feature_scale"],
                       Criterion("silhouette").score(result, prepared), Criterion("subspace").score(result, prepared),
                       [int(label) for label in result.labels], _step_seconds(result, prepared.config.epochs),
                       prepared.data_digest, result.summary["stage2_measures"])


def _step_seconds(result: RunResult, stage2_steps: int) -> dict[str, float]:
    if result.summary["config"].get("solver"):
        return {}  # a shallow solver takes no training steps
    steps = {"stage1": result.summary["pretrain_epochs_run"], "stage2": stage2_steps}
    seconds = {"stage1": result.timings.stage1_s, "stage2": result.timings.finetune_s}
    return {stage: seconds[stage] / steps[stage] for stage in steps if steps[stage]}


def run_bench(
    registry: Registry,
    cases: Iterable[BenchCase],
    seeds: Iterable[int],
    clusterers: Iterable[str],
    folder: Path | str,
    on_record: Callable[[BenchRecord, bool], None] | None = None,
    datasets: LoadedDatasets | None = None,
    should_stop: Callable[[], bool] | None = None,
    records_folder: Path | str | None = None,
) -> list[BenchRecord]:
    """Every case x seed, reusing stored runs and, from ``folder``/stage1, stored Stage I runs;
    ``on_record(record, reused)`` after each. Each dataset is read once (into ``datasets``).
    Records are kept in ``records_folder`` (default ``folder``): small files worth keeping under
    version control, apart from the weights and checkpoints that are not.

    When ``should_stop`` turns true, the run in progress is checkpointed under ``folder``/checkpoints
    and TrainingInterrupted is raised; the next call for the same case and seed continues it."""
    store = RecordStore(records_folder if records_folder is not None else folder)
    clusterers = list(clusterers)
    datasets = datasets if datasets is not None else LoadedDatasets()
    records = []
    for case in cases:
        fingerprint = case.fingerprint(registry)
        data = prepare(resolve_config(registry, *case.layers), registry, datasets=datasets).data_digest
        for seed in seeds:
            record = store.find(case, fingerprint, seed, data)
            reused = record is not None and set(clusterers) <= set(record.scores)
            if not reused:
                checkpoint_dir = Path(folder) / CHECKPOINT_FOLDER / case.name / f"seed{seed}-{fingerprint[:12]}"
                record = run_case(registry, case, seed, clusterers, Path(folder) / STAGE1_FOLDER, datasets,
                                  checkpoint_dir, should_stop)
                store.save(case, record)
                shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the run finished: its checkpoint has served
            records.append(record)
            if on_record is not None:
                on_record(record, reused)
    return records


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation over seeds of one case scored by one clusterer."""

    case: str
    clusterer: str
    seeds: tuple[int, ...]
    mean: dict[str, float]
    std: dict[str, float]
    seconds: float  # mean wall time of one seed: training + this clusterer


def summarise(records: Iterable[BenchRecord], clusterer: str) -> list[Summary]:
    by_case: dict[str, list[BenchRecord]] = {}
    for record in records:
        if clusterer in record.scores:
            by_case.setdefault(record.case, []).append(record)
    summaries = []
    for case, group in by_case.items():
        values = {m: [r.scores[clusterer][m] for r in group] for m in SCORES}
        seconds = [r.train_s + r.scores[clusterer]["seconds"] for r in group]
        summaries.append(Summary(
            case, clusterer, tuple(r.seed for r in group),
            {m: statistics.mean(v) for m, v in values.items()},
            {m: statistics.stdev(v) if len(v) > 1 else 0.0 for m, v in values.items()},
            statistics.mean(seconds),
        ))
    return summaries


def grid_cases(base_layers: Sequence[dict[str, Any]], grid: Mapping[str, Sequence[Any]]) -> list[BenchCase]:
    """One case per point of the grid, named by its settings (e.g. ``miner=none k=5``)."""
    from dscsc_core.evaluation.tuning import as_layer, candidates

    cases = []
    for settings in candidates(grid):
        label = " ".join(f"{key}={value}" for key, value in settings.items())
        cases.append(BenchCase(label.replace("/", "_"), (*base_layers, as_layer(settings))))
    return cases


def summary_table(summaries: Iterable[Summary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (mean ± std per metric, seconds per seed) shared by the CSV and Markdown outputs."""
    header = ["case", "clusterer", "seeds", *(f"{m}_mean" for m in SCORES), *(f"{m}_std" for m in SCORES), "seconds"]
    rows = [[s.case, s.clusterer, str(len(s.seeds)), *(f"{s.mean[m]:.4f}" for m in SCORES),
             *(f"{s.std[m]:.4f}" for m in SCORES), f"{s.seconds:.1f}"] for s in summaries]
    return header, rows


def summary_csv(summaries: Iterable[Summary]) -> str:
    import csv
    import io

    header, rows = summary_table(summaries)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def summary_markdown(summaries: Iterable[Summary]) -> str:
    lines = ["| case | clusterer | seeds | ACC | NMI | ARI | seconds / seed |", "|---|---|---|---|---|---|---|"]
    for s in summaries:
        cells = [f"{s.mean[m]:.4f} ± {s.std[m]:.4f}" for m in SCORES]
        lines.append(f"| {s.case} | {s.clusterer} | {len(s.seeds)} | {' | '.join(cells)} | {s.seconds:.1f} |")
    return "\n".join(lines) + "\n"
