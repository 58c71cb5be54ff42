"""Plugin discovery: entry points in group ``dscsc`` -> pluggy -> a registry of components.

Built-ins are an ordinary entry point of this distribution, so they load exactly like third-party
plugins. A plugin that fails to import or register is skipped with a recorded warning (or raised
under ``strict``), so one broken plugin never takes the rest down.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as metadata
import importlib.util
import os
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from .errors import ConfigError, PluginError, UnknownComponentError
from .hookspecs import HOOKS, PRESET_HOOK, PROJECT, DscscSpecs
from .interfaces import KINDS
from .params import Component, Param

ENTRY_POINT_GROUP = PROJECT


@dataclass(frozen=True)
class ComponentInfo:
    kind: str
    name: str
    factory: type[Component]
    provider: str
    distribution: str
    version: str

    @property
    def summary(self) -> str:
        return self.factory.summary

    @property
    def params(self) -> tuple[Param, ...]:
        return tuple(self.factory.params)

    @property
    def object_path(self) -> str:
        return f"{self.factory.__module__}:{self.factory.__qualname__}"


@dataclass(frozen=True)
class PresetInfo:
    """A named TOML run configuration shipped by a plugin (e.g. one per benchmark dataset)."""

    name: str
    path: Path
    provider: str
    # Every registered preset by name, so that ``base = "other"`` can be resolved.
    catalogue: dict[str, PresetInfo] = field(default_factory=dict, compare=False, repr=False)

    def read(self, _inside: tuple[str, ...] = ()) -> dict[str, Any]:
        """The preset's settings; a ``base = "name"`` preset's settings come first, the file's own on top."""
        from .config import merge_preset, read_toml

        data = read_toml(self.path)
        base = data.pop("base", None)
        if base is None:
            return data
        if base not in self.catalogue:
            raise ConfigError(f"preset '{self.name}' builds on base '{base}', which is not a registered preset")
        if base in (*_inside, self.name):
            raise ConfigError(f"presets build on each other in a circle: {' -> '.join((*_inside, self.name, base))}")
        return merge_preset(self.catalogue[base].read((*_inside, self.name)), data)

    @property
    def summary(self) -> str:
        try:
            with self.path.open("rb") as handle:
                return str(tomllib.load(handle).get("preset", {}).get("description", ""))
        except (OSError, tomllib.TOMLDecodeError):
            return ""


@dataclass
class Registry:
    """Every component the loaded plugins registered, keyed by (kind, name), and their presets."""

    components: dict[tuple[str, str], ComponentInfo] = field(default_factory=dict)
    presets: dict[str, PresetInfo] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def preset(self, name: str) -> PresetInfo:
        try:
            return self.presets[name]
        except KeyError:
            choices = sorted(self.presets)
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.4)
            raise UnknownComponentError("preset", name, choices, close[0] if close else None) from None

    def names(self, kind: str) -> list[str]:
        return sorted(name for k, name in self.components if k == kind)

    def get(self, kind: str, name: str) -> ComponentInfo:
        try:
            return self.components[(kind, name)]
        except KeyError:
            choices = self.names(kind)
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.4)
            raise UnknownComponentError(kind, name, choices, close[0] if close else None) from None

    def create(self, kind: str, name: str, **params: Any) -> Component:
        return self.get(kind, name).factory(**params)

    def __iter__(self):
        order = list(HOOKS)
        return iter(sorted(self.components.values(), key=lambda c: (order.index(c.kind), c.name)))


def _env_list(variable: str) -> set[str]:
    return {item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()}


def _distribution_of(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "unknown", "unknown"
    return dist.metadata["Name"], dist.version


class PluginLoader:
    """Builds a fresh ``PluginManager('dscsc')`` and the registry its plugins provide."""

    def __init__(self, strict: bool | None = None, disabled: Iterable[str] | None = None):
        self.strict = bool(int(os.environ.get("DSCSC_STRICT_PLUGINS", "0") or 0)) if strict is None else strict
        self.disabled = set(disabled) if disabled is not None else _env_list("DSCSC_DISABLE_PLUGINS")
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(DscscSpecs)
        self.provenance: dict[str, tuple[str, str]] = {}
        self.registry = Registry()

    def _fail(self, message: str) -> None:
        if self.strict:
            raise PluginError(message)
        self.registry.warnings.append(message)

    def load_entry_points(self) -> None:
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in self.disabled or self.manager.has_plugin(entry_point.name):
                continue
            try:
                module = entry_point.load()
            except Exception as exc:  # a broken third-party plugin must not break the host
                self._fail(f"plugin '{entry_point.name}' failed to import: {type(exc).__name__}: {exc}")
                continue
            self.add_plugin(module, entry_point.name, _distribution_of(entry_point))

    def add_plugin(self, plugin: ModuleType | object, name: str, provenance: tuple[str, str] = ("local", "")) -> None:
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:
            self._fail(f"plugin '{name}' failed to register: {type(exc).__name__}: {exc}")
            return
        self.provenance[name] = provenance

    def add_module(self, module_name: str) -> None:
        self.add_plugin(importlib.import_module(module_name), module_name)

    def add_local(self, spec: str) -> None:
        """A plugin the user named (``--plugin``): a ``.py`` file or an importable module.

        Unlike an installed plugin that breaks, a named one that cannot load is an error: the
        user asked for it, and a run without it would not be the run they meant.
        """
        module = _import_local(spec)
        if self.manager.has_plugin(module.__name__):
            return
        try:
            self.manager.register(module, name=module.__name__)
        except Exception as exc:
            raise PluginError(f"plugin '{spec}' failed to register: {type(exc).__name__}: {exc}") from None
        self.provenance[module.__name__] = ("local", spec)

    def collect(self) -> Registry:
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            self._fail(f"plugin hook not recognised: {exc}")
        for kind, hook_name in HOOKS.items():
            for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                self._call_impl(kind, impl)
        for impl in getattr(self.manager.hook, PRESET_HOOK).get_hookimpls():
            self._call_preset_impl(impl)
        return self.registry

    def _call_preset_impl(self, impl: pluggy.HookImpl) -> None:
        def preset(path: Path | str, provider: str) -> PresetInfo:
            path = Path(path)
            if not path.is_file():
                raise PluginError(f"preset file {path} does not exist")
            return PresetInfo(path.stem, path, provider, self.registry.presets)

        self._call_hook(impl, "presets", preset, self.registry.presets, lambda info: info.name)

    def _call_impl(self, kind: str, impl: pluggy.HookImpl) -> None:
        distribution, version = self.provenance.get(impl.plugin_name, ("local", ""))

        def component(factory: type, provider: str) -> ComponentInfo:
            return self._validated(kind, factory, provider, distribution, version)

        self._call_hook(impl, f"{kind}s", component, self.registry.components, lambda info: (kind, info.name))

    def _call_hook(self, impl: pluggy.HookImpl, what: str, make_info, table: dict, key) -> None:
        """Call one plugin's register hook; a failing hook is skipped, a name clash is an error."""
        provider = impl.plugin_name
        found: list = []
        try:
            impl.function(register=lambda item: found.append(make_info(item, provider)))
        except Exception as exc:
            self._fail(f"plugin '{provider}' failed to register its {what}: {type(exc).__name__}: {exc}")
            return
        for info in found:
            clash = table.get(key(info))
            if clash is not None:
                label = f"{getattr(info, 'kind', 'preset')} '{info.name}'"
                raise PluginError(f"{label} is registered twice: by plugin '{clash.provider}' and by '{provider}'")
            table[key(info)] = info

    @staticmethod
    def _validated(kind: str, factory: type, provider: str, distribution: str, version: str) -> ComponentInfo:
        base = KINDS[kind]
        if not (isinstance(factory, type) and issubclass(factory, base)):
            raise PluginError(
                f"plugin '{provider}' registered {factory!r} as a {kind}, but it is not a {base.__name__}"
            )
        if not factory.name:
            raise PluginError(f"plugin '{provider}' registered {factory.__qualname__} without a name")
        return ComponentInfo(kind, factory.name, factory, provider, distribution, version)


def _import_local(spec: str) -> ModuleType:
    path = Path(spec).expanduser()
    try:
        if spec.endswith(".py") or path.is_file():
            if not path.is_file():
                raise PluginError(f"plugin file not found: {spec}")
            name = f"dscsc_local_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module
        return importlib.import_module(spec)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"plugin '{spec}' failed to import: {type(exc).__name__}: {exc}") from None


def load_registry(
    extra_modules: Iterable[str] = (), strict: bool | None = None, local_plugins: Iterable[str] = ()
) -> Registry:
    """Load every installed plugin (built-ins included), ``extra_modules`` by import path, and
    ``local_plugins`` (files or modules the user named with ``--plugin`` or a config's ``plugins``)."""
    loader = PluginLoader(strict=strict)
    loader.load_entry_points()
    for module_name in extra_modules:
        loader.add_module(module_name)
    for spec in local_plugins:
        loader.add_local(spec)
    return loader.collect()
