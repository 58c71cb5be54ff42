"""Shared fixtures and helpers: the plugin registry, and driving the CLI through Typer's runner."""

import importlib
import os
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import dscsc_cli.main as cli
from dscsc_core.plugin_api.registry import PluginLoader

# Two CPU cores on CI: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))

_runner = CliRunner()


@pytest.fixture
def registry():
    from dscsc_core.plugin_api.registry import load_registry

    return load_registry(strict=True)


@pytest.fixture(autouse=True)
def with_test_plugin(monkeypatch):
    """Every command sees tests/support_plugin.py (broken datasets, tiny presets) beside the installed plugins."""

    def load(local_plugins=()):
        loader = PluginLoader(strict=True)
        loader.load_entry_points()
        loader.add_module("support_plugin")
        for spec in local_plugins:
            loader.add_local(spec)
        return cli._warned(loader.collect())

    monkeypatch.setattr(cli, "_load_registry", load)


def invoke(*args, **kwargs):
    """Run ``dscsc ARGS`` in-process; the result holds exit code, stdout and stderr."""
    return _runner.invoke(cli.app, list(args), **kwargs)


def assert_one_line_error(result, *fragments, code=2):
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output + result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# Benchmark files are never committed: tests read them through the data root. Point it at the
# shared folder next to the checkout unless the environment already names one.
_SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
if "DSCSC_DATA" not in os.environ and os.path.isdir(_SHARED_DATA):
    os.environ["DSCSC_DATA"] = os.path.abspath(_SHARED_DATA)


def benchmark_script(name: str):
    """A script of benchmarks/ imported as a module (they are scripts, not a package)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)
