"""Command-line options made from the run settings' declarations (``RUN_SETTINGS``).

A command decorated with ``@run_settings()`` gets one ``--name`` option per run setting, with the
setting's help, type and default, and receives the values given as one ``settings`` layer. Values
arrive as text and are parsed by the core's ``Param``s, so a bad value gets the same one-line
error whether it came from a flag or a config file. Adding a setting therefore adds its option.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import typer

from dscsc_core.plugin_api.kinds import PLUGIN_KINDS
from dscsc_core.plugin_api.params import Param
from dscsc_core.settings import RUN_SETTINGS, SELECTION_SETTINGS

from .errors import flag
from .extra_args import parse_extra_args

_SELECTIONS = {p.name for p in SELECTION_SETTINGS}
_OPTIONAL_SELECTIONS = {kind.option for kind in PLUGIN_KINDS if kind.optional}
_METAVARS = {int: "INT", float: "FLOAT", str: "TEXT"}


def option_help(param: Param) -> str:
    """The setting's own help and its default, e.g. ``Adam learning rate (default: 0.001).``"""
    if param.name in _OPTIONAL_SELECTIONS:
        return f"{param.help} (default: none)."
    if param.name in _SELECTIONS:
        return f"{param.help} (default: the one marked * in dscsc plugins list)."
    if param.default is None:  # the help says what happens when it is unset
        return f"{param.help}."
    default = f"{param.default:g}" if isinstance(param.default, float) else param.default
    return f"{param.help} (default: {default})."


def _option(param: Param) -> inspect.Parameter:
    if param.choices:
        metavar = "|".join(param.choices)
    else:
        metavar = "NAME" if param.name in _SELECTIONS else _METAVARS[param.type]
    panel = "Plugins" if param.name in _SELECTIONS else "Run settings"
    option = typer.Option(None, flag(param.name), metavar=metavar, help=option_help(param), rich_help_panel=panel,
                          show_default=False)
    return inspect.Parameter(param.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=str | None)


def run_settings(*excluded: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command an option per run setting (less ``excluded``); it receives their values as
    ``settings``, a dict holding only the settings given."""
    params = [p for p in RUN_SETTINGS if p.name not in excluded]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "settings"]

        @functools.wraps(command)
        def with_settings(**values: Any) -> Any:
            given = {p.name: values.pop(p.name) for p in params}
            return command(settings={name: value for name, value in given.items() if value is not None}, **values)

        with_settings.__signature__ = signature.replace(parameters=[*own, *map(_option, params)])
        return with_settings

    return decorate


def settings_layer(settings: dict[str, Any], extra_args: list[str]) -> dict[str, Any]:
    """The flags of one command as a run layer: its settings, and plugin parameters (``--k 15``)
    from the arguments no option took."""
    return {**settings, "params": parse_extra_args(extra_args)}
