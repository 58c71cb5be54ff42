"""pluggy hook specifications: one ``dscsc_register_<kind>s(register)`` hook per plugin kind, plus
``dscsc_register_presets`` and ``dscsc_register_defaults``.

A plugin implements any of these with ``@hookimpl`` and calls ``register(...)`` once per thing it
provides. The component hooks are made from the table of kinds (``dscsc_core.plugin_api.kinds``), so a new
kind gets its hook without an edit here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy

from dscsc_core.plugin_api.kinds import PLUGIN_KINDS, PluginKind

PROJECT = "dscsc"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[type], None]
RegisterPreset = Callable[[Path], None]
RegisterDefault = Callable[[str, str], None]

PRESET_HOOK = "dscsc_register_presets"
DEFAULTS_HOOK = "dscsc_register_defaults"


class DscscSpecs:
    @hookspec
    def dscsc_register_presets(self, register: RegisterPreset) -> None:
        """Register run presets: ``register(path)`` with a TOML run configuration; its name is the file stem."""

    @hookspec
    def dscsc_register_defaults(self, register: RegisterDefault) -> None:
        """Name the component a run uses when it selects none of a kind: ``register("miner", "knn")``."""


def _component_hook(kind: PluginKind):
    def register_components(self, register: Register) -> None:
        pass

    register_components.__name__ = kind.hook
    register_components.__qualname__ = f"{DscscSpecs.__name__}.{kind.hook}"  # pluggy skips `self` of methods
    register_components.__doc__ = f"Register {kind.base.__name__} subclasses ({kind.help})."
    return hookspec(register_components)


for _kind in PLUGIN_KINDS:
    setattr(DscscSpecs, _kind.hook, _component_hook(_kind))
