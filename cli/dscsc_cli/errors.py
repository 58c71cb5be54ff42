"""Turns the library's typed errors, and Typer's usage errors, into one line on stderr and a non-zero exit.

The library names settings in its own words (``'n_clusters'``); here they become flags (``--n-clusters``).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any

import typer
from typer.core import TyperGroup

from dscsc_core.errors import DscscError, DscscWarning

try:  # Typer >= 0.26 vendors click; the usage errors of that click derive from TyperException
    from typer import TyperException as UsageProblem
except ImportError:  # pragma: no cover  (older Typer runs on click itself)
    from click import ClickException as UsageProblem

USAGE_EXIT = 2
INTERRUPT_EXIT = 130
# Where a command finds the arguments it was called with (ctx.meta), e.g. to start itself again in more processes.
ARGS = "dscsc.args"


def flag(name: str) -> str:
    """The command line's word for a setting or plugin parameter: ``n_clusters`` -> ``--n-clusters``."""
    return "--" + name.replace("_", "-")


def cli_message(error: DscscError) -> str:
    """A library error in the command line's words: the settings it names become flags, and an
    interrupted run says how to continue."""
    message = error.render(flag)
    checkpoint_dir = getattr(error, "checkpoint_dir", None)
    if checkpoint_dir is not None:
        message += f"; continue with: dscsc run --resume {checkpoint_dir}"
    return message


@contextlib.contextmanager
def library_warnings_as_lines():
    """The library's warnings (``DscscWarning``: a cache it cannot write, a damaged entry it trains again) as one
    ``warning:`` line each on stderr, as they happen; other warnings keep Python's own display."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def one_line(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DscscWarning):
                typer.echo(f"warning: {message}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = one_line
        warnings.simplefilter("always", DscscWarning)
        yield


@contextlib.contextmanager
def report_errors(quiet: bool = False):
    """The library's errors and warnings as lines on stderr; ``quiet`` (a process beside the one that reports,
    which meets the same ones): only the exit status."""
    try:
        with library_warnings_as_lines():
            if quiet:
                warnings.simplefilter("ignore", DscscWarning)
            yield
    except DscscError as error:
        if not quiet:
            typer.echo(f"error: {cli_message(error)}", err=True)
        raise typer.Exit(getattr(error, "exit_code", USAGE_EXIT)) from None
    except KeyboardInterrupt:
        if not quiet:
            typer.echo("interrupted", err=True)
        raise typer.Exit(INTERRUPT_EXIT) from None


def usage_line(problem: Exception) -> str:
    """A usage error as one line, with where to read the command's options."""
    message = problem.format_message() if hasattr(problem, "format_message") else str(problem)
    text = " ".join(line.strip() for line in message.splitlines() if line.strip()).rstrip(".")
    text = text[:1].lower() + text[1:]  # like the library's messages: "option '--epochs' requires ..."
    context = getattr(problem, "ctx", None)
    return f"{text} (see: {context.command_path} --help)" if context is not None else text


class OneLineErrors(TyperGroup):
    """A command group whose usage errors (an option without its value, an unknown command or
    option, a missing argument) are one ``error:`` line and exit 2, like every other bad input,
    instead of Typer's boxed usage message."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except UsageProblem as problem:
            typer.echo(f"error: {usage_line(problem)}", err=True)
            sys.exit(USAGE_EXIT)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta.setdefault(ARGS, list(args))  # the whole command line; subcommands' contexts share meta
        # A group called without a command shows its help (exit 2, as before) rather than an error.
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            typer.echo(ctx.get_help(), nl=False)  # rich help prints itself and returns ""
            ctx.exit(USAGE_EXIT)
        return super().parse_args(ctx, args)
