"""The ``dscsc`` command: ``dscsc run`` and ``dscsc plugins list``.

Heavy imports (torch, plugins) happen inside commands so that ``dscsc --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from .errors import report_errors
from .extra_args import parse_extra_args

app = typer.Typer(
    name="dscsc",
    help="Deep subspace clustering with plugins: DSCSC (structural contrastive + self-expression) and friends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
plugins_app = typer.Typer(help="Inspect the installed plugins and their components.", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")

_PLUGIN_OPTION_HELP = (
    "Plugin parameters go as plain flags: --k 15 reaches the selected plugin declaring k (or --miner.k 15). "
    "Other core settings (--head-hidden, --coef-init-std, --pretrain-tol, --pretrain-patience) work the same way."
)


def _load_registry():
    from dscsc_core.registry import load_registry

    registry = load_registry()
    for warning in registry.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return registry


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_PLUGIN_OPTION_HELP,
)
def run(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, help="Dataset source (default: digits)."),
    encoder: str | None = typer.Option(None, help="Encoder plugin (default: conv1)."),
    augment: str | None = typer.Option(None, help="Augmentation policy (default: geometric)."),
    miner: str | None = typer.Option(None, help="Negative miner (default: knn)."),
    regularizer: str | None = typer.Option(None, help="Self-expression regulariser (default: l2)."),
    clusterer: str | None = typer.Option(None, help="Clusterer (default: dsc-post)."),
    pretrain_epochs: str | None = typer.Option(None, metavar="INT", help="Stage I epochs (default: 150)."),
    epochs: str | None = typer.Option(None, metavar="INT", help="Stage II epochs (default: 150)."),
    seed: str | None = typer.Option(None, metavar="INT", help="Seed of every random choice (default: 0)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N (default: auto)."),
    lr: str | None = typer.Option(None, metavar="FLOAT", help="Adam learning rate (default: 1e-3)."),
    alpha: str | None = typer.Option(None, metavar="FLOAT", help="SEM weight alpha (default: 10^(K/10-3))."),
    beta: str | None = typer.Option(None, metavar="FLOAT", help="Contrastive loss weight (default: 10)."),
    gamma: str | None = typer.Option(None, metavar="FLOAT", help="Self-expression loss weight (default: 1)."),
    temperature: str | None = typer.Option(None, metavar="FLOAT", help="Contrastive temperature rho (default: 0.1)."),
    head_dim: str | None = typer.Option(None, metavar="INT", help="Contrastive head output size (default: 64)."),
    n_clusters: str | None = typer.Option(None, metavar="INT", help="Number of clusters (default: from the labels)."),
    input_scale: str | None = typer.Option(None, metavar="FLOAT", help="Multiply pixel values by this (default: 1)."),
    config: Path | None = typer.Option(None, "--config", help="TOML file of settings (defaults < file < flags)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for result.json, labels.npy and coef.npy."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Train DSCSC on a dataset and cluster it: Stage I (no SEM), Stage II (with SEM), then the clusterer."""
    # Numbers arrive as text and are parsed by the core's declared settings, so a bad value gets
    # the same one-line error whether it came from a flag or a config file.
    options = dict(locals())
    with report_errors():
        from dscsc_core.config import CORE_SETTINGS, read_toml

        flags = {name: value for name, value in options.items() if name in CORE_SETTINGS}
        extra = parse_extra_args(ctx.args)
        # Settings without a dedicated option (e.g. --pretrain-tol) are core settings, not plugin parameters.
        flags.update({name: extra.pop(name) for name in list(extra) if name in CORE_SETTINGS})
        flags["params"] = extra
        _run_and_report(read_toml(config) if config else {}, flags, out, json_output)


def _run_and_report(file_layer: dict[str, Any], flags: dict[str, Any], out: Path | None, json_output: bool) -> None:
    from dscsc_core.runner import check_output_dir, execute, prepare, resolve_config, write_result

    from .display import StageProgress, result_table

    registry = _load_registry()
    prepared = prepare(resolve_config(registry, file_layer, flags), registry)
    if out is not None:
        check_output_dir(out)
    with StageProgress() as progress:
        result = execute(prepared, on_epoch=progress.update)
    if out is not None:
        write_result(result, out)
    if json_output:
        typer.echo(json.dumps(result.summary, default=str))
    else:
        result_table(result.summary, out)


@plugins_app.command("list")
def plugins_list(json_output: bool = typer.Option(False, "--json", help="Print the listing as JSON.")) -> None:
    """List every registered component: kind, name, providing distribution and summary."""
    with report_errors():
        from .display import plugins_table

        registry = _load_registry()
        rows = [_component_row(info) for info in registry]
        if json_output:
            typer.echo(json.dumps(rows, indent=2))
        else:
            plugins_table(rows)


def _component_row(info) -> dict[str, Any]:
    return {
        "kind": info.kind, "name": info.name, "provider": info.provider,
        "distribution": info.distribution, "version": info.version, "summary": info.summary,
        "params": [
            {"name": p.name, "type": p.type_name, "help": p.help,
             "default": list(p.default) if isinstance(p.default, tuple) else p.default}
            for p in info.params
        ],
    }


def main() -> None:
    app(prog_name="dscsc")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
