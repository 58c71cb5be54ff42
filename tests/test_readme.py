"""The README's promises: its plugin example works, CI runs its test command, its links land."""

import re
import types
from pathlib import Path

from dscsc_core.plugin_api.registry import PluginLoader
from dscsc_core.run.pipeline import execute, prepare, resolve_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_miner_example_registers_and_runs():
    module = types.ModuleType("readme_miner")
    exec(compile(_code_blocks("python")[0], "README.md", "exec"), module.__dict__)
    loader = PluginLoader(strict=True)
    loader.load_entry_points()
    loader.add_plugin(module, "readme_miner")
    registry = loader.collect()
    assert registry.get("miner", "farthest").provider == "readme_miner"
    config = resolve_config(registry, {"dataset": "synthetic", "miner": "farthest", "pretrain_epochs": 2,
                                       "epochs": 2, "params": {"q": "0.3"}})
    result = execute(prepare(config, registry))
    assert result.summary["components"]["miner"]["params"] == {"q": 0.3}


def test_ci_runs_the_readme_test_command():
    test_command = next(block.strip() for block in _code_blocks("bash") if "pytest" in block)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_ci_builds_its_own_environment_and_lists_the_versions_it_tested():
    script = (ROOT / ".ci" / "run").read_text()
    assert "python -m venv" in script and "activate" in script
    assert script.index(".ci/versions.py") < script.index("python -m pytest")


def test_readme_and_docs_link_only_to_files_that_exist():
    """The README is short and sends readers to docs/ for the details: every relative link must land."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = [f"{page.relative_to(ROOT)} -> {target}" for page in pages
              for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert not broken, broken
