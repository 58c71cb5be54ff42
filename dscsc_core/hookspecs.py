"""pluggy hook specifications: one ``dscsc_register_<kind>s(register)`` hook per plugin kind.

A plugin implements any of these with ``@hookimpl`` and calls ``register(ComponentClass)`` once
per component it provides.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy

PROJECT = "dscsc"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[type], None]
RegisterPreset = Callable[[Path], None]


class DscscSpecs:
    @hookspec
    def dscsc_register_encoders(self, register: Register) -> None:
        """Register Encoder subclasses (encoder + mirrored decoder builders)."""

    @hookspec
    def dscsc_register_augmentations(self, register: Register) -> None:
        """Register AugmentationPolicy subclasses."""

    @hookspec
    def dscsc_register_miners(self, register: Register) -> None:
        """Register NegativeMiner subclasses."""

    @hookspec
    def dscsc_register_regularizers(self, register: Register) -> None:
        """Register SelfExpressionRegularizer subclasses."""

    @hookspec
    def dscsc_register_clusterers(self, register: Register) -> None:
        """Register Clusterer subclasses."""

    @hookspec
    def dscsc_register_datasets(self, register: Register) -> None:
        """Register DatasetSource subclasses."""

    @hookspec
    def dscsc_register_presets(self, register: RegisterPreset) -> None:
        """Register run presets: ``register(path)`` with a TOML run configuration; its name is the file stem."""


PRESET_HOOK = "dscsc_register_presets"

# component kind -> hook name; the order is the order listings use.
HOOKS: dict[str, str] = {
    "encoder": "dscsc_register_encoders",
    "augmentation": "dscsc_register_augmentations",
    "miner": "dscsc_register_miners",
    "regularizer": "dscsc_register_regularizers",
    "clusterer": "dscsc_register_clusterers",
    "dataset": "dscsc_register_datasets",
}
