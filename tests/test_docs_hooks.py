"""docs/writing-plugins.md documents every hook with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

from dscsc_core.plugin_api.hookspecs import DscscSpecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "writing-plugins.md"


def hooks():
    return [name for name, _ in inspect.getmembers(DscscSpecs, inspect.isfunction) if name.startswith("dscsc_")]


def test_every_hook_is_documented_with_its_signature():
    text = DOC.read_text()
    assert len(hooks()) >= 7
    for name in hooks():
        parameters = [p for p in inspect.signature(getattr(DscscSpecs, name)).parameters if p != "self"]
        assert f"`{name}({parameters[0]}:" in text, f"docs/writing-plugins.md does not document {name}"
        assert parameters == ["register"], f"{name}: the docs describe hooks taking only `register`"
