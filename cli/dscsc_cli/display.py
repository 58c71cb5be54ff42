"""rich output: per-stage progress bars, the result table and the plugin listing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

_STAGE_TITLES = {"pretrain": "Stage I  (DRH + SCH)", "finetune": "Stage II (DRH + SCH + SEM)"}

stdout = Console()
stderr = Console(stderr=True)


class StageProgress:
    """One progress bar per training stage, showing the current total loss."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=stderr, transient=False,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> StageProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, report) -> None:
        if report.stage not in self.tasks:
            title = _STAGE_TITLES.get(report.stage, report.stage)
            self.tasks[report.stage] = self.progress.add_task(title, total=report.total, loss="-")
        self.progress.update(self.tasks[report.stage], completed=report.epoch, loss=f"{report.losses['total']:.4g}")


def result_table(summary: dict, out: Path | None) -> None:
    components = summary["components"]
    table = Table(title=f"dscsc on {components['dataset']['name']} (seed {summary['seed']}, {summary['device']})")
    for column in ("ACC", "NMI", "ARI", "seconds"):
        table.add_column(column, justify="right")
    metrics = summary["metrics"]
    scores = [f"{metrics[key]:.4f}" for key in ("acc", "nmi", "ari")] if metrics else ["-", "-", "-"]
    table.add_row(*scores, f"{summary['timings']['total_s']:.1f}")
    stdout.print(table)
    chosen = ", ".join(f"{option}={part['name']}" for option, part in components.items() if option != "dataset")
    stdout.print(f"[dim]{chosen}[/dim]")
    if out is not None:
        stdout.print(f"results written to {out}")


def plugins_table(rows: list[dict]) -> None:
    table = Table(title="dscsc plugins")
    for column in ("kind", "name", "distribution", "summary"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["kind"], row["name"], f"{row['distribution']} {row['version']}".strip(), row["summary"])
    stdout.print(table)
