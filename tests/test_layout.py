"""The core's layout shows its architecture: layered subpackages, and no module imports itself round a circle.

Every import counts, also one made inside a function or under ``TYPE_CHECKING``: a circle there is still a
circle in the design."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "dscsc_core"
# Lower layers never import higher ones. The foundations (errors, files, metrics) sit below everything; the
# declarations of the run settings (settings, made of the plugin API's Param) between the plugin API and the
# trainer; the front ends (the package's public names, estimator, testing) above everything.
LAYERS = ("plugin_api", "settings", "training", "run", "evaluation")
FOUNDATIONS = ("errors", "files", "metrics")
FRONT_ENDS = ("estimator", "testing")


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The dscsc_core modules ``path`` imports (``from dscsc_core.x import y`` names x, or x.y when that is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dscsc_core"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("dscsc_core"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in CORE.rglob("*.py")}
    return {name: {target for target in _imports(path) if target in modules and target != name}
            for name, path in modules.items()}


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in graph[node]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: the public names, re-exported from the plugin API
        return 1 + len(LAYERS)
    if parts[1] in FOUNDATIONS:
        return 0
    if parts[1] in LAYERS:
        return 1 + LAYERS.index(parts[1])
    assert parts[1] in FRONT_ENDS, f"{module} belongs to no layer; add it to LAYERS, FOUNDATIONS or FRONT_ENDS"
    return 1 + len(LAYERS)


def test_no_module_of_the_core_imports_itself_round_a_circle():
    graph = _graph()
    circles = [cycle for name in sorted(graph) if (cycle := _cycle_through(graph, name))]
    assert not circles, "import circles: " + "; ".join(" -> ".join(cycle) for cycle in circles)


def test_each_layer_imports_only_layers_below_it_or_its_own():
    graph = _graph()
    upward = [f"{source} -> {target}" for source, targets in graph.items() for target in targets
              if target != "dscsc_core" and _layer(target) > _layer(source)]
    assert not upward, "imports that reach up a layer: " + ", ".join(sorted(upward))


def test_the_core_is_grouped_in_subpackages_not_one_flat_folder():
    flat = sorted(path.stem for path in CORE.glob("*.py") if path.stem != "__init__")
    assert set(flat) <= {*FOUNDATIONS, *FRONT_ENDS, "settings"}, f"top-level modules outside the layout: {flat}"
