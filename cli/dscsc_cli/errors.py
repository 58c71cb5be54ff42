"""Turns the library's typed errors into one line on stderr and a non-zero exit."""

from __future__ import annotations

import contextlib

import typer

from dscsc_core.errors import DscscError

USAGE_EXIT = 2
INTERRUPT_EXIT = 130


@contextlib.contextmanager
def report_errors():
    try:
        yield
    except DscscError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(getattr(error, "exit_code", USAGE_EXIT)) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(INTERRUPT_EXIT) from None
