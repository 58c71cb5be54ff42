"""Where a command's runs come from, layered in one order for every command and script:
preset < run file < overrides (flags, a data root, a case's changes); the run file's local
plugins and the ones named with ``--plugin`` are loaded with the installed ones."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from dscsc_core.plugin_api.registry import Registry
from dscsc_core.plugin_api.run_files import local_plugins, read_toml


@dataclass(frozen=True)
class Recipe:
    preset: str | None = None
    config_file: Path | None = None
    plugins: tuple[str, ...] = ()  # files or modules named by the user

    @cached_property
    def file_layer(self) -> dict[str, Any]:
        return read_toml(self.config_file) if self.config_file is not None else {}

    def local_plugins(self) -> list[str]:
        """The run file's ``plugins`` (relative to its folder), then the ones named by the user."""
        folder = Path(self.config_file).parent if self.config_file is not None else None
        return [*local_plugins(self.file_layer, folder), *self.plugins]

    def layers(self, registry: Registry, *overrides: dict[str, Any]) -> list[dict[str, Any]]:
        preset = [registry.preset(self.preset).read()] if self.preset else []
        return [*preset, self.file_layer, *overrides]
