"""An external plugin package (examples/dscsc-hard-miner) installed with pip works end to end.

A fresh process runs it and its own tests; the listing and error paths run in-process with the install
folder on sys.path (entry points are found from sys.path either way), which saves a process start each."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "dscsc-hard-miner"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """pip-install the example into a private folder; a subprocess sees it through PYTHONPATH."""
    target = tmp_path_factory.mktemp("site")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-compile",
         "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    return target


@pytest.fixture
def installed(site, monkeypatch):
    """The install folder on this process's sys.path, as PYTHONPATH puts it on a new one's."""
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def dscsc(site: Path, *args: str) -> subprocess.CompletedProcess:
    code = "import sys; from dscsc_cli.main import main; sys.argv = ['dscsc', *sys.argv[1:]]; main()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=site)


def test_listed_with_its_distribution_and_version(installed):
    listed = invoke("plugins", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    rows = {(row["kind"], row["name"]): row for row in json.loads(listed.stdout)}
    row = rows[("miner", "hard")]
    assert (row["distribution"], row["version"], row["provider"]) == ("dscsc-hard-miner", "0.1.0", "hard")


def test_show_lists_its_parameters(installed):
    shown = invoke("plugins", "show", "miner", "hard", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert [p["name"] for p in json.loads(shown.stdout)["params"]] == ["k", "m"]


def test_runs_end_to_end_by_name(site):
    ran = dscsc(site, "run", "--dataset", "synthetic", "--miner", "hard", "--k", "3", "--m", "4",
                "--pretrain-epochs", "2", "--epochs", "2", "--json")
    assert ran.returncode == 0, ran.stderr[-2000:]
    miner = json.loads(ran.stdout)["components"]["miner"]
    assert (miner["name"], miner["distribution"], miner["params"]) == ("hard", "dscsc-hard-miner", {"k": 3, "m": 4})


def test_its_parameters_are_validated_before_the_run(installed, tmp_path):
    bad = invoke("run", "--dataset", "synthetic", "--miner", "hard", "--k", "-2", "--out", str(tmp_path / "run"))
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == ["error: miner 'hard' parameter 'k' must be >= 0; got -2"]


def test_the_examples_own_tests_pass(site):
    env = {**os.environ, "PYTHONPATH": str(site)}
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                         capture_output=True, text=True, env=env, cwd=site)
    assert ran.returncode == 0, ran.stdout[-2000:]


def test_naming_the_installed_module_again_is_one_warning_not_a_traceback(installed):
    listed = invoke("plugins", "list", "--json", "--plugin", "dscsc_hard_miner")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stderr.strip().splitlines() == [
        "warning: plugin 'dscsc_hard_miner' is already loaded as plugin 'hard' (distribution "
        "dscsc-hard-miner 0.1.0); using that"]
    assert ("miner", "hard") in {(row["kind"], row["name"]) for row in json.loads(listed.stdout)}
