"""Re-render a run directory's figures and a one-page report.md; compare several runs.

Everything is read back from the files a run wrote (result.json, metrics.csv, *.npy), so a report
can be made again later, on another machine, without retraining.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import sparse

from dscsc_core.errors import ConfigError
from dscsc_core.files import atomic_write_text
from dscsc_core.plugin_api.kinds import REQUIRED_SELECTIONS
from dscsc_core.run import figures
from dscsc_core.run.config import SELECTIONS
from dscsc_core.run.outputs import FIGURES_DIR, METRICS_CSV, REPORT, RESULT, RESULT_FORMAT

REQUIRED = (RESULT, "labels.npy", "embedding.npy", METRICS_CSV)  # and the affinity: affinity.npy or .npz

_NUMBER = (int, float)
# What the readers below take from result.json, and the type each must have: a result of any format
# (older ones carry no "format" key) is read when it has these, and refused naming the ones it lacks.
RESULT_KEYS: dict[str, type | tuple[type, ...]] = {
    "dscsc_version": str, "config": dict, "seed": int, "device": str,
    "data.n_samples": int, "data.n_clusters": int,
    **{f"components.{option}.name": str for option in REQUIRED_SELECTIONS},
    **{f"timings.{stage}_s": _NUMBER for stage in ("total", "pretrain", "finetune", "cluster")},
    "metrics": (dict, type(None)), "final_losses": dict,
}
OPTIONAL_KEYS = {"metrics": None, "final_losses": {}}


@dataclass
class RunFiles:
    folder: Path
    summary: dict[str, Any]
    labels: np.ndarray
    affinity: np.ndarray | sparse.csr_matrix  # sparse where the clusterer kept each sample's strongest links
    embedding: np.ndarray
    truth: np.ndarray | None
    metrics: list[dict[str, str]]

    @classmethod
    def read(cls, folder: Path | str) -> RunFiles:
        """The run stored in ``folder``; any missing, damaged, foreign or mismatched file is one ConfigError."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"run folder {folder} does not exist")
        missing = [name for name in REQUIRED if not (folder / name).is_file()]
        affinity_file = next((folder / name for name in ("affinity.npy", "affinity.npz") if (folder / name).is_file()),
                             None)
        missing += [] if affinity_file is not None else ["affinity.npy (or .npz)"]
        if missing:
            raise ConfigError(f"{folder} is not a complete run folder: missing {', '.join(missing)}")
        summary = read_result(folder / RESULT)
        arrays = {name: _read_array(folder / f"{name}.npy") for name in ("labels", "embedding")}
        arrays["affinity"] = _read_array(affinity_file)
        truth = _read_array(folder / "truth.npy") if (folder / "truth.npy").is_file() else None
        _check_shapes(folder, summary["data"]["n_samples"], {**arrays, "truth": truth})
        metrics = _read_metrics(folder / METRICS_CSV)
        return cls(folder, summary, arrays["labels"], arrays["affinity"], arrays["embedding"], truth, metrics)


def read_result(path: Path) -> dict[str, Any]:
    """result.json at ``path``, checked to hold every key the readers use (see RESULT_KEYS)."""
    try:
        summary = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text: the file is damaged or not a dscsc result") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}): the file is damaged or "
                          "was cut short") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{path} is not a dscsc result: expected a JSON object, found {type(summary).__name__}")
    version = summary.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= RESULT_FORMAT:
        raise ConfigError(f"{path} has result format {version!r}; this dscsc reads formats 0 to {RESULT_FORMAT} "
                          "(a newer dscsc wrote it?)")
    summary = {**OPTIONAL_KEYS, **summary}
    if unusable := _unusable(summary):
        raise ConfigError(f"{path} (result format {version}) lacks {', '.join(unusable)}: written by another "
                          "version of dscsc, or edited; run it again to read it here")
    return summary


def _unusable(summary: dict[str, Any]) -> list[str]:
    """The keys of RESULT_KEYS (and the scores and losses present) that are absent or of the wrong type."""
    needed = dict(RESULT_KEYS)
    if isinstance(summary["metrics"], dict):
        needed.update({f"metrics.{name}": _NUMBER for name in ("acc", "nmi", "ari")})
    if isinstance(summary["final_losses"], dict):
        needed.update({f"final_losses.{name}": _NUMBER for name in summary["final_losses"] if "." not in name})
    return [key for key, kind in needed.items() if not _has(summary, key, kind)]


def _has(summary: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> bool:
    value: Any = summary
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)


def _read_array(path: Path) -> np.ndarray | sparse.csr_matrix:
    try:
        return sparse.load_npz(path).tocsr() if path.suffix == ".npz" else np.load(path)
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise ConfigError(f"{path} is damaged or not a NumPy array file ({exc})") from None


def _check_shapes(folder: Path, n_samples: int, arrays: dict[str, np.ndarray | None]) -> None:
    """Every array describes the same samples as result.json (not files of two different runs)."""
    expected = {"labels": (n_samples,), "truth": (n_samples,), "affinity": (n_samples, n_samples)}
    for name, array in arrays.items():
        if array is None:
            continue
        shape = array.shape if name in expected else array.shape[:1]
        if shape != expected.get(name, (n_samples,)):
            raise ConfigError(f"{folder / f'{name}.npy'} has shape {array.shape}, but {folder / RESULT} describes "
                              f"{n_samples} samples: the folder mixes files of different runs")


def _read_metrics(path: Path) -> list[dict[str, str]]:
    """metrics.csv's rows; a file that is not one (wrong header, non-numbers) is one ConfigError."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            for column, value in row.items():
                if column not in ("stage", None) and value:
                    float(value)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError, TypeError, csv.Error):
        raise ConfigError(f"{path} is damaged: expected the columns stage, epoch and numbers per loss term") \
            from None
    if rows and "stage" not in rows[0]:
        raise ConfigError(f"{path} is damaged: expected the columns stage, epoch and numbers per loss term")
    return rows


def render_figures(run: RunFiles, images: torch.Tensor | None = None) -> list[Path]:
    """Write every figure that the run's files allow into ``run.folder / 'figures'``."""
    out = run.folder / FIGURES_DIR
    out.mkdir(exist_ok=True)
    made = [figures.affinity_figure(run.affinity, run.labels, run.truth, out / "affinity.png")]
    if run.metrics:  # a shallow solver trains nothing, so its run has no loss curves
        made.append(figures.loss_figure(run.metrics, out / "losses.png"))
    if images is not None:
        made.append(figures.gallery_figure(images, run.labels, out / "gallery.png"))
    if run.truth is not None:
        made.append(figures.confusion_figure(run.truth, run.labels, out / "confusion.png"))
    if run.embedding.shape[0] > 5:
        made.append(figures.tsne_figure(run.embedding, run.labels, out / "tsne.png", seed=run.summary["seed"]))
    return made


def _used_selections(parts: dict[str, Any]) -> list[str]:
    """The components a run used: a shallow solver replaces the network and what trains it."""
    if "solver" in parts:
        return [option for option in ("dataset", "solver", "clusterer") if option in parts]
    return [option for option in SELECTIONS if option in parts]


def _time_line(timings: dict[str, float], solved: bool) -> str:
    """Seconds per stage; a shallow solver's time stands where Stage II's would."""
    stage1 = f"Stage I {timings['pretrain_s']:.1f} s, "
    stages = (f"{stage1 if timings['pretrain_s'] else ''}solving {timings['finetune_s']:.1f} s" if solved else
              f"{stage1}Stage II {timings['finetune_s']:.1f} s")
    return f"- time: {timings['total_s']:.1f} s in all ({stages}, clustering {timings['cluster_s']:.1f} s)"


def report_markdown(run: RunFiles, made: list[Path]) -> str:
    s = run.summary
    parts = s["components"]
    metrics = s.get("metrics")
    lines = [f"# dscsc run: {parts['dataset']['name']}", "",
             f"- seed {s['seed']}, device {s['device']}, dscsc {s['dscsc_version']}, "
             f"{s['data']['n_samples']} samples, {s['data']['n_clusters']} clusters",
             "- plugins: " + ", ".join(_plugin_line(option, parts[option]) for option in _used_selections(parts)),
             _time_line(s["timings"], solved="solver" in parts), ""]
    if metrics:
        lines += ["| ACC | NMI | ARI |", "|---|---|---|",
                  f"| {metrics['acc']:.4f} | {metrics['nmi']:.4f} | {metrics['ari']:.4f} |", ""]
    else:
        lines += ["No labels: no scores.", ""]
    losses = s.get("final_losses", {})
    if losses:
        lines += ["Final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()), ""]
    for path in made:
        lines += [f"![{path.stem}](figures/{path.name})", ""]
    if not any(p.name == "gallery.png" for p in made):
        lines += ["(No image gallery: the dataset could not be loaded again to show its images.)", ""]
    return "\n".join(lines)


def _plugin_line(option: str, part: dict[str, Any]) -> str:
    provider = f"{part.get('distribution', '?')} {part.get('version', '')}".strip()  # absent in older results
    return f"{option} `{part['name']}` ({provider})"


def write_report(folder: Path | str, images: torch.Tensor | None = None) -> Path:
    run = RunFiles.read(folder)
    made = render_figures(run, images)
    path = run.folder / REPORT
    atomic_write_text(path, report_markdown(run, made))
    return path


def compare_rows(folders: list[Path | str]) -> list[dict[str, Any]]:
    rows = []
    for folder in folders:
        summary = RunFiles.read(folder).summary
        parts, metrics = summary["components"], summary.get("metrics") or {}
        rows.append({
            "run": str(folder), "dataset": parts["dataset"]["name"], "encoder": parts["encoder"]["name"],
            "augment": parts["augment"]["name"], "miner": parts["miner"]["name"],
            "clusterer": parts["clusterer"]["name"], "seed": summary["seed"],
            **{k: metrics.get(k) for k in ("acc", "nmi", "ari")}, "seconds": summary["timings"]["total_s"],
        })
    return rows
