"""Re-render a run directory's figures and a one-page report.md; compare several runs.

Everything is read back from the files a run wrote (result.json, metrics.csv, *.npy), so a report
can be made again later, on another machine, without retraining.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import figures
from .errors import ConfigError
from .runner import atomic_write_text

REQUIRED = ("result.json", "labels.npy", "affinity.npy", "embedding.npy", "metrics.csv")


@dataclass
class RunFiles:
    folder: Path
    summary: dict[str, Any]
    labels: np.ndarray
    affinity: np.ndarray
    embedding: np.ndarray
    truth: np.ndarray | None

    @classmethod
    def read(cls, folder: Path | str) -> RunFiles:
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"run folder {folder} does not exist")
        missing = [name for name in REQUIRED if not (folder / name).is_file()]
        if missing:
            raise ConfigError(f"{folder} is not a complete run folder: missing {', '.join(missing)}")
        try:
            summary = json.loads((folder / "result.json").read_text())
            arrays = {name: np.load(folder / f"{name}.npy") for name in ("labels", "affinity", "embedding")}
            truth = np.load(folder / "truth.npy") if (folder / "truth.npy").is_file() else None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read run folder {folder}: {exc}") from None
        return cls(folder, summary, arrays["labels"], arrays["affinity"], arrays["embedding"], truth)


def render_figures(run: RunFiles, images: torch.Tensor | None = None) -> list[Path]:
    """Write every figure that the run's files allow into ``run.folder / 'figures'``."""
    out = run.folder / "figures"
    out.mkdir(exist_ok=True)
    made = [figures.affinity_figure(run.affinity, run.labels, run.truth, out / "affinity.png"),
            figures.loss_figure(figures.read_metrics(run.folder / "metrics.csv"), out / "losses.png")]
    if images is not None:
        made.append(figures.gallery_figure(images, run.labels, out / "gallery.png"))
    if run.truth is not None:
        made.append(figures.confusion_figure(run.truth, run.labels, out / "confusion.png"))
    if run.embedding.shape[0] > 5:
        made.append(figures.tsne_figure(run.embedding, run.labels, out / "tsne.png", seed=run.summary.get("seed", 0)))
    return made


def report_markdown(run: RunFiles, made: list[Path]) -> str:
    s = run.summary
    parts = s["components"]
    metrics = s.get("metrics")
    lines = [f"# dscsc run: {parts['dataset']['name']}", "",
             f"- seed {s['seed']}, device {s['device']}, dscsc {s['dscsc_version']}, "
             f"{s['data']['n_samples']} samples, {s['data']['n_clusters']} clusters",
             "- plugins: " + ", ".join(f"{o} `{p['name']}` ({p['distribution']} {p['version']})".strip()
                                       for o, p in parts.items()),
             f"- time: {s['timings']['total_s']:.1f} s in all (Stage I {s['timings']['pretrain_s']:.1f} s, "
             f"Stage II {s['timings']['finetune_s']:.1f} s, clustering {s['timings']['cluster_s']:.1f} s)", ""]
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


def write_report(folder: Path | str, images: torch.Tensor | None = None) -> Path:
    run = RunFiles.read(folder)
    made = render_figures(run, images)
    path = run.folder / "report.md"
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
