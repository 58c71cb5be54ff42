"""The ``dscsc`` command: ``dscsc run`` and ``dscsc plugins list``.

Heavy imports (torch, plugins) happen inside commands so that ``dscsc --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import typer

from .errors import ARGS, OneLineErrors, report_errors
from .settings_options import run_settings, settings_layer

app = typer.Typer(
    name="dscsc",
    help="Deep subspace clustering with plugins: DSCSC (structural contrastive + self-expression) and friends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)
plugins_app = typer.Typer(help="Inspect the installed plugins and their components.", no_args_is_help=True,
                          cls=OneLineErrors)
app.add_typer(plugins_app, name="plugins")

_PLUGIN_OPTION_HELP = (
    "Plugin parameters go as plain flags: --k 15 reaches the selected plugin declaring k (or --miner.k 15); "
    "dscsc plugins show KIND NAME lists a plugin's parameters."
)
_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

_PLUGIN_FILES = typer.Option([], "--plugin", help="Extra plugin: a .py file or a module (repeatable).")
_STAGE1_CACHE = typer.Option(
    None, "--stage1-cache",
    help="Folder of finished Stage I runs: reuse one with the same Stage I settings, data and seed, store new ones.",
)
_PRESET = typer.Option(None, "--preset", help="Named preset, e.g. orl (see dscsc presets).")
_CONFIG = typer.Option(None, "--config", help="TOML file of settings (preset < file < flags).")


def _load_registry(local_plugins: list[str] | tuple[str, ...] = ()):
    from dscsc_core.plugin_api.registry import load_registry

    return _warned(load_registry(local_plugins=local_plugins))


def _warned(registry):
    """The registry, after one line on stderr per plugin that was skipped or is a duplicate."""
    for warning in registry.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return registry


def _recipe(preset: str | None, config: Path | None, plugins: list[str]):
    """The run recipe of a command (preset < config file < overrides) and the registry with its
    local plugins loaded: every command builds its runs this one way."""
    from dscsc_core.run.recipe import Recipe

    recipe = Recipe(preset, config, tuple(plugins))
    return recipe, _load_registry(recipe.local_plugins())


@app.command(context_settings=_EXTRA_ARGS, epilog=_PLUGIN_OPTION_HELP)
@run_settings()
def run(
    ctx: typer.Context,
    settings: dict[str, Any],
    preset: str | None = _PRESET,
    config: Path | None = _CONFIG,
    plugin: list[str] = _PLUGIN_FILES,
    out: Path | None = typer.Option(None, "--out", help="Folder for results, metrics.csv, figures, checkpoints."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Render PNG figures and report.md in --out."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue the interrupted run in this --out folder."),
    stage1_cache: Path | None = _STAGE1_CACHE,
) -> None:
    """Train DSCSC on a dataset and cluster it: Stage I (no SEM), Stage II (with SEM), then the clusterer."""
    from dscsc_core.run.processes import leads_launch

    leads = leads_launch()  # of several processes torchrun started, only the first writes and prints
    with report_errors(quiet=not leads):
        flags = settings_layer(settings, ctx.args)
        recipe, registry = _recipe(preset, config, plugin)
        layers = recipe.layers(registry)
        out = out or resume
        with _owned(out) if leads else contextlib.nullcontext():
            checkpoint = _checkpoint(resume)
            if checkpoint is not None:  # the interrupted run's own settings come first; flags may only repeat them
                layers = [checkpoint.settings, *layers]
            processes = _processes_to_start(registry, [*layers, flags])
            if processes == 1:
                _run_and_report(registry, [*layers, flags], out, json_output, figures, checkpoint, stage1_cache,
                                leads)
        if processes > 1:  # with the folder given up: the first of the processes takes it
            from .launch import start_processes

            raise typer.Exit(start_processes(ctx.meta[ARGS], processes))


def _processes_to_start(registry, layers: list[dict[str, Any]]) -> int:
    """How many processes this command starts to train (1: it trains itself): ``nproc``, where torchrun did not
    start this one. The run is prepared first, so what would refuse it does so before any process starts."""
    from dscsc_core.run.pipeline import prepare, resolve_config
    from dscsc_core.run.processes import launched

    if launched():
        return 1
    config = resolve_config(registry, *layers)
    if config.nproc > 1:
        prepare(config, registry)
    return config.nproc


@contextlib.contextmanager
def _owned(folder: Path | None, create: bool = True):
    """Hold ``folder`` for as long as this command writes there: a second run into it is refused,
    and temporary files of killed writers go. Without a folder (no --out) there is nothing to hold."""
    if folder is None:
        yield
        return
    from dscsc_core.run.outputs import RunFolder

    with RunFolder(folder, create=create) as owned:
        if owned.taken_over is not None:
            typer.echo(f"warning: took over {folder} from {owned.taken_over.describe()}, which is no longer "
                       "running", err=True)
        yield


def _checkpoint(run_dir: Path | None):
    if run_dir is None:
        return None
    from dscsc_core.run.outputs import CHECKPOINT
    from dscsc_core.training.checkpoint import Checkpoint

    return Checkpoint.load(run_dir / CHECKPOINT)


def _run_and_report(registry, layers: list[dict[str, Any]], out: Path | None, json_output: bool,
                    figures: bool = True, checkpoint=None, stage1_cache: Path | None = None,
                    leads: bool = True) -> None:
    from dscsc_core.run.outputs import clear_run_files, write_result
    from dscsc_core.run.pipeline import execute, prepare, resolve_config
    from dscsc_core.run.processes import process_group
    from dscsc_core.training.checkpoint import stop_requests

    from .display import StageProgress, result_table

    prepared = prepare(resolve_config(registry, *layers), registry)
    if out is not None and checkpoint is None and leads:
        clear_run_files(out)  # the folder is this run's now: no earlier run's file may stay beside its own
    with (process_group(prepared.device), StageProgress() if leads else contextlib.nullcontext() as progress,
          stop_requests() as stop_requested):
        result = execute(prepared, on_epoch=progress.update if leads else None, checkpoint_dir=out,
                         resume=checkpoint, should_stop=stop_requested.is_set, stage1_cache=stage1_cache)
    if result is None:  # one of several processes, not the first: that one writes and reports
        return
    if out is not None:
        write_result(result, out)
        if figures:
            from dscsc_core.run.report import write_report

            write_report(out, prepared.data.images)
    if json_output:
        typer.echo(json.dumps(result.summary, default=str))
    else:
        result_table(result.summary, out)


def _seed_list(seeds: str) -> list[int]:
    from dscsc_core.plugin_api.params import Param

    count = Param("seeds", int, 1, "number of seeds", min=1).parse(seeds)
    return list(range(count))


_SEARCH_PANEL = "Augmentation search"


# Several processes train a run of ``dscsc run`` only: tune, bench and ablate have no --nproc.
@app.command(context_settings=_EXTRA_ARGS, epilog=_PLUGIN_OPTION_HELP)
@run_settings("seed", "nproc")
def tune(
    ctx: typer.Context,
    settings: dict[str, Any],
    preset: str | None = typer.Option(None, "--preset", help="Base preset, e.g. orl."),
    config: Path | None = typer.Option(None, "--config", help="Base TOML file (over the preset)."),
    grid: list[str] = typer.Option(
        [], "--grid", help="NAME=V1,V2,... to search (repeatable), e.g. k=5,10,20; with --augment-search, "
        "tried with every policy."),
    seeds: str = typer.Option("1", metavar="INT", help="Seeds per candidate (0..N-1)."),
    write: Path | None = typer.Option(None, "--write", help="Write the best settings as a TOML layer for --config."),
    plugin: list[str] = _PLUGIN_FILES,
    space: str = typer.Option(
        "input", "--space",
        help="Where the silhouette is measured: input (the pixels, one space for every candidate) or embedding.",
    ),
    criterion: str = typer.Option(
        "silhouette", "--criterion",
        help="silhouette (compact clusters, the paper's) or subspace (each cluster fits a low-dim subspace).",
    ),
    subspace_dim: int | None = typer.Option(
        None, "--subspace-dim", help="Per-cluster dimension for --criterion subspace (default: the clusterer's dim)."
    ),
    both_criteria: bool | None = typer.Option(
        None, "--both-criteria/--one-criterion", show_default=False,
        help="Also score every candidate by the other criterion, beside the ranking one (the same clusters, no "
        "extra training). Default: both with --augment-search.",
    ),
    stage1_cache: Path | None = _STAGE1_CACHE,
    child_epochs: int | None = typer.Option(
        None, "--child-epochs", help="Stage II epochs of every candidate's run (short child runs); --write leaves "
        "them out, so the winner runs at the recipe's length."),
    augment_search: bool = typer.Option(
        False, "--augment-search", rich_help_panel=_SEARCH_PANEL,
        help="Search augmentation policies (augment=policy: one or two operations, a magnitude, a probability) "
        "drawn from the policy space, beside the recipe's own augmentation and none."),
    policies: int | None = typer.Option(
        None, "--policies", rich_help_panel=_SEARCH_PANEL,
        help="How many policies --augment-search draws, one child run each per seed (default: 8)."),
    op_pairs: bool = typer.Option(False, "--op-pairs", rich_help_panel=_SEARCH_PANEL,
                                  help="Also draw policies of two operations (e.g. rotate+contrast)."),
    search_seed: int | None = typer.Option(
        None, "--search-seed", rich_help_panel=_SEARCH_PANEL,
        help="Seed of the draw: the same seed draws the same policies (default: 0)."),
) -> None:
    """Search settings without labels: the best candidate has the highest mean criterion score."""
    with report_errors():
        from dscsc_core.evaluation.tuning import Criterion
        from dscsc_core.evaluation.tuning import tune as run_tune

        from .display import tuning_table

        chosen = Criterion(criterion, space, subspace_dim)
        reported = chosen.others() if (augment_search if both_criteria is None else both_criteria) else ()
        search = _policy_search(augment_search, policies, op_pairs, search_seed)
        if write is not None:
            from dscsc_core.run.outputs import check_output_file

            check_output_file(write)
        flags = settings_layer(settings, ctx.args)
        recipe, registry = _recipe(preset, config, plugin)
        layers = recipe.layers(registry, flags, *_child_runs(flags, child_epochs))
        searched, caption = _tune_candidates(registry, layers, grid, search)
        ranked = run_tune(registry, layers, searched, _seed_list(seeds), criterion=chosen, reported=reported,
                          stage1_cache=stage1_cache, on_candidate=lambda c: _announce(c, chosen, reported))
        tuning_table(ranked, chosen.describe(), reported, caption)
        if write is not None:
            _write_best(write, ranked[0].settings, chosen.describe())


def _policy_search(augment_search: bool, policies: int | None, op_pairs: bool, search_seed: int | None):
    """What --augment-search draws (None without it, where the options that shape it are refused)."""
    from dscsc_core.errors import ConfigError
    from dscsc_core.evaluation.augment_search import PolicySearch

    if not augment_search:
        if policies is not None or op_pairs or search_seed is not None:
            raise ConfigError("--policies, --op-pairs and --search-seed shape the augmentation search; add "
                              "--augment-search")
        return None
    default = PolicySearch()
    return PolicySearch(default.policies if policies is None else policies, op_pairs,
                        default.seed if search_seed is None else search_seed)


def _child_runs(flags: dict[str, Any], child_epochs: int | None) -> list[dict[str, Any]]:
    """The layer that shortens every candidate's Stage II to --child-epochs (none without it)."""
    if child_epochs is None:
        return []
    if "epochs" in flags:
        from dscsc_core.errors import ConfigError

        raise ConfigError("--child-epochs and --epochs both set the candidates' Stage II epochs; give one")
    return [{"epochs": child_epochs}]


def _tune_candidates(registry, layers: list[dict[str, Any]], grid: list[str], search):
    """What tune tries (a grid, or the augmentation search crossed with it) and a caption for its table."""
    from dscsc_core.errors import ConfigError
    from dscsc_core.evaluation.augment_search import baselines, search_candidates
    from dscsc_core.evaluation.tuning import parse_grid

    if search is None and not grid:
        raise ConfigError("nothing to tune: give --grid NAME=V1,V2,... (repeatable) or --augment-search")
    parsed = parse_grid(grid)
    if search is None:
        return parsed, None
    names = [candidate["augment"] for candidate in baselines(registry, layers)]
    roles = ("the recipe's own", "no augmentation")
    caption = "baselines: " + ", ".join(f"augment={name} ({role})" for name, role in zip(names, roles, strict=False))
    return search_candidates(registry, layers, search, parsed), caption


def _announce(candidate, chosen, reported) -> None:
    from .display import tuning_score

    scores = [(chosen, candidate.mean), *((c, candidate.reported_mean(c)) for c in reported)]
    line = "  ".join(f"{criterion.name} {tuning_score(value)}" for criterion, value in scores)
    typer.echo(f"{line}  {candidate.settings}", err=True)


def _write_best(path: Path, settings: dict[str, Any], criterion: str) -> None:
    from dscsc_core.evaluation.tuning import as_layer
    from dscsc_core.files import atomic_write_text

    layer = as_layer(settings)
    lines = [f"# Chosen by `dscsc tune` (highest mean {criterion}; labels not used)."]
    lines += [f"{key} = {json.dumps(value)}" for key, value in layer.items() if key != "params"]
    if layer["params"]:
        lines += ["", "[params]"] + [f'"{key}" = {json.dumps(value)}' for key, value in layer["params"].items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")


@app.command(context_settings=_EXTRA_ARGS, epilog=_PLUGIN_OPTION_HELP)
@run_settings("seed", "nproc")
def bench(
    ctx: typer.Context,
    settings: dict[str, Any],
    preset: list[str] = typer.Option(..., "--preset", help="Preset to benchmark (repeatable)."),
    seeds: str = typer.Option("5", metavar="INT", help="Seeds per preset (0..N-1)."),
    clusterers: str = typer.Option("spectral,dsc-post", help="Clusterers scored on each learned C."),
    out: Path = typer.Option(Path("bench-runs"), "--out", help="Folder of per-run records; finished runs are reused."),
) -> None:
    """Run presets x seeds, score every clusterer on the same C, print mean ± std (final epoch)."""
    with report_errors():
        from dscsc_core.evaluation.repeats import BenchCase, run_bench, summarise
        from dscsc_core.run.outputs import check_output_dir
        from dscsc_core.run.recipe import Recipe

        from .display import bench_table

        flags = settings_layer(settings, ctx.args)
        registry = _load_registry()
        cases = [BenchCase(name, tuple(Recipe(name).layers(registry, flags))) for name in preset]
        names = _clusterer_names(registry, clusterers)
        check_output_dir(out)
        records = run_bench(registry, cases, _seed_list(seeds), names, out, on_record=_progress)
        bench_table([s for name in names for s in summarise(records, name)])


def _clusterer_names(registry, listed: str, default: str | None = None) -> list[str]:
    """The clusterers a comma list names (``default`` when it names none), each checked to exist."""
    names = [name.strip() for name in listed.split(",") if name.strip()] or ([default] if default else [])
    for name in names:
        registry.get("clusterer", name)
    return names


@plugins_app.command("list")
def plugins_list(
    json_output: bool = typer.Option(False, "--json", help="Print the listing as JSON."),
    plugin: list[str] = _PLUGIN_FILES,
) -> None:
    """List every registered component: kind, name, providing distribution and summary; * marks a kind's default."""
    with report_errors():
        from .display import plugins_table

        registry = _load_registry(plugin)
        rows = [_component_row(info, registry.is_default(info)) for info in registry]
        if json_output:
            typer.echo(json.dumps(rows, indent=2))
        else:
            plugins_table(rows)


@plugins_app.command("show")
def plugins_show(
    kind: str = typer.Argument(..., help="encoder, augmentation, miner, regularizer, clusterer or dataset."),
    name: str = typer.Argument(..., help="Component name, e.g. knn."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
    plugin: list[str] = _PLUGIN_FILES,
) -> None:
    """Show one component: summary, parameters (type, default, range, help) and who provides it."""
    with report_errors():
        from dscsc_core.plugin_api.kinds import plugin_kind

        from .display import component_panel

        kind_name = plugin_kind(kind).name
        registry = _load_registry(plugin)
        info = registry.get(kind_name, name)
        row = _component_row(info, registry.is_default(info))
        if json_output:
            typer.echo(json.dumps(row, indent=2))
        else:
            component_panel(row)


def _component_row(info, default: bool) -> dict[str, Any]:
    return {
        "kind": info.kind, "name": info.name, "provider": info.provider, "object": info.object_path,
        "distribution": info.distribution, "version": info.version, "summary": info.summary, "default": default,
        "params": [
            {"name": p.name, "type": p.type_name, "help": p.help,
             "default": list(p.default) if isinstance(p.default, tuple) else p.default,
             "min": p.min, "max": p.max, "choices": list(p.choices) if p.choices else None}
            for p in info.params
        ],
    }


@app.command(context_settings=_EXTRA_ARGS, epilog=_PLUGIN_OPTION_HELP)
@run_settings("seed", "nproc")
def ablate(
    ctx: typer.Context,
    settings: dict[str, Any],
    preset: str | None = typer.Option(None, "--preset", help="Base preset, e.g. orl."),
    config: Path | None = typer.Option(None, "--config", help="Base recipe (TOML), over the preset."),
    grid: list[str] = typer.Option(
        ..., "--grid", help="kind=a,b or param=v1,v2 (repeatable), e.g. --grid miner=knn,none --grid k=5,10."
    ),
    seeds: str = typer.Option("3", metavar="INT", help="Seeds per grid point (0..N-1)."),
    clusterers: str = typer.Option("", help="Clusterers scored on each C (default: the base's clusterer)."),
    out: Path = typer.Option(Path("ablation"), "--out", help="Folder for runs, ablation.csv and ablation.md."),
    plugin: list[str] = _PLUGIN_FILES,
) -> None:
    """Swap components or settings over a grid; runs already in --out are reused, not re-run."""
    with report_errors():
        from dscsc_core.evaluation.repeats import grid_cases, run_bench, summarise, summary_csv, summary_markdown
        from dscsc_core.evaluation.tuning import parse_grid
        from dscsc_core.files import atomic_write_text
        from dscsc_core.run.pipeline import LoadedDatasets, prepare, resolve_config

        from .display import bench_table

        flags = settings_layer(settings, ctx.args)
        recipe, registry = _recipe(preset, config, plugin)
        base = recipe.layers(registry, flags)
        cases = grid_cases(base, parse_grid(grid))
        datasets = LoadedDatasets()
        for case in cases:  # every grid point is checked before the first one trains
            prepare(resolve_config(registry, *case.layers), registry, datasets=datasets)
        names = _clusterer_names(registry, clusterers, resolve_config(registry, *base).clusterer)
        with _owned(out):
            records = run_bench(registry, cases, _seed_list(seeds), names, out / "runs", on_record=_progress,
                                datasets=datasets)
            summaries = [s for name in names for s in summarise(records, name)]
            atomic_write_text(out / "ablation.csv", summary_csv(summaries))
            atomic_write_text(out / "ablation.md", summary_markdown(summaries))
        bench_table(summaries, "dscsc ablate")
        typer.echo(f"wrote {out / 'ablation.csv'} and {out / 'ablation.md'}")


def _progress(record, reused) -> None:
    typer.echo(record.progress_line(reused), err=True)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A folder written by dscsc run --out.")) -> None:
    """(Re)render a run's figures and its one-page report.md from the files it wrote."""
    with report_errors():
        from dscsc_core.run.report import RunFiles, write_report

        with _owned(run_dir, create=False):
            run = RunFiles.read(run_dir)
            path = write_report(run_dir, _reload_images(run.summary))
        typer.echo(f"wrote {path} and {run_dir / 'figures'}")


def _reload_images(summary: dict[str, Any]):
    """The run's images for the gallery, or None when its dataset cannot be loaded here any more. Only the
    dataset is read: the gallery needs neither the run's checks nor its features."""
    from dscsc_core.errors import DscscError
    from dscsc_core.plugin_api.datapaths import DataRoot
    from dscsc_core.run.pipeline import build_components, resolve_config

    try:
        registry = _load_registry()
        config = resolve_config(registry, summary["config"])
        _, components = build_components(config, registry)
        return components["dataset"].load(DataRoot.resolve(config.data_root)).images
    except DscscError:
        return None


@app.command()
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="Folders written by dscsc run --out."),
    json_output: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """A table of several runs: plugins, seed, ACC/NMI/ARI and time."""
    with report_errors():
        from dscsc_core.run.report import compare_rows

        from .display import compare_table

        rows = compare_rows(run_dirs)
        if json_output:
            typer.echo(json.dumps(rows, indent=2))
        else:
            compare_table(rows)


@app.command("presets")
def presets_list() -> None:
    """List the registered presets (one per benchmark dataset): use them with dscsc run --preset NAME."""
    with report_errors():
        from .display import presets_table

        registry = _load_registry()
        presets_table([(info.name, info.provider, info.summary) for info in registry.presets.values()])


def main() -> None:
    app(prog_name="dscsc")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
