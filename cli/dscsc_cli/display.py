"""rich output: per-stage progress bars, the result table and the plugin listing."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

_STAGE_TITLES = {"pretrain": "Stage I ", "finetune": "Stage II"}

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
        if exc[0] is not None:  # a failed run ends with its one error line, not with stale bars
            self.progress.live.transient = True
        self.progress.__exit__(*exc)

    def update(self, report) -> None:
        if report.stage not in self.tasks:
            # The terms this run's stage trains (Stage I is DRH alone with pretrain_objective drh).
            terms = " + ".join(name.upper() for name in report.losses if name != "total")
            title = f"{_STAGE_TITLES.get(report.stage, report.stage)} ({terms})"
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
    table = Table(title="dscsc plugins (* the default of its kind)")
    for column in ("kind", "name", "distribution", "summary"):
        table.add_column(column)
    for row in rows:
        name = f"{row['name']} *" if row["default"] else row["name"]
        table.add_row(row["kind"], name, f"{row['distribution']} {row['version']}".strip(), row["summary"])
    stdout.print(table)


def tuning_score(value: float) -> str:
    """A criterion's value as tune prints it: five decimals, because on real data the candidates'
    subspace fits differ in the fourth (UMIST's: 0.98272 against 0.98280)."""
    return f"{value:.5f}"


def tuning_table(ranked, criterion: str, reported=(), caption: str | None = None) -> None:
    """The candidates, best first by the ranking criterion; each ``reported`` criterion's mean beside it."""
    table = Table(title=f"dscsc tune: candidates by mean {criterion} (labels not used)")
    table.add_column("rank")
    table.add_column("settings", overflow="fold")  # a policy's operations must show whole, however narrow
    for column in ("score (mean)", "per seed", *(f"{c.name} (mean)" for c in reported)):
        table.add_column(column)
    for rank, candidate in enumerate(ranked, 1):
        settings = "\n".join(f"{key}={value}" for key, value in candidate.settings.items())  # one setting a line
        per_seed = " ".join(tuning_score(score) for score in candidate.scores)
        beside = [tuning_score(candidate.reported_mean(c)) for c in reported]
        table.add_row(str(rank), settings, tuning_score(candidate.mean), per_seed, *beside)
    stdout.print(table)
    if caption:
        stdout.print(caption, soft_wrap=True)  # below the table, not as its caption: as wide as the line needs


def bench_table(summaries, title: str = "dscsc bench") -> None:
    table = Table(title=f"{title}: mean ± std over seeds, final epoch")
    for column in ("case", "clusterer", "seeds", "ACC", "NMI", "ARI", "seconds"):
        table.add_column(column)
    for s in summaries:
        cells = [f"{s.mean[m]:.4f} ± {s.std[m]:.4f}" for m in ("acc", "nmi", "ari")]
        table.add_row(s.case, s.clusterer, str(len(s.seeds)), *cells, f"{s.seconds:.1f}")
    stdout.print(table)


def presets_table(rows) -> None:
    table = Table(title="dscsc presets (dscsc run --preset NAME)")
    for column in ("name", "provider", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    stdout.print(table)


def component_panel(row: dict) -> None:
    stdout.print(f"[bold]{row['kind']} {row['name']}[/bold]: {row['summary']}")
    provided = f"{row['distribution']} {row['version']}".strip()
    stdout.print(f"provided by plugin '{row['provider']}' ({provided}), {row['object']}")
    if row["default"]:
        stdout.print(f"the default {row['kind']}: runs that select no {row['kind']} use it")
    if not row["params"]:
        stdout.print("no parameters")
        return
    table = Table(title="parameters (flags: --NAME VALUE)")
    for column in ("name", "type", "default", "allowed", "help"):
        table.add_column(column)
    for param in row["params"]:
        table.add_row(f"--{param['name'].replace('_', '-')}", param["type"], str(param["default"]),
                      _allowed(param), param["help"])
    stdout.print(table)


def _allowed(param: dict) -> str:
    if param["choices"]:
        return ", ".join(map(str, param["choices"]))
    low = "" if param["min"] is None else f">= {param['min']}"
    high = "" if param["max"] is None else f"<= {param['max']}"
    return " and ".join(part for part in (low, high) if part) or "any"


def compare_table(rows: list[dict]) -> None:
    table = Table(title="dscsc compare")
    columns = ("run", "dataset", "encoder", "augment", "miner", "clusterer", "seed", "acc", "nmi", "ari", "seconds")
    for column in columns:
        table.add_column(column.upper() if column in ("acc", "nmi", "ari") else column)
    for row in rows:
        table.add_row(Path(row["run"]).name, *(_cell(row[c]) for c in columns[1:]))
    stdout.print(table)


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
