"""Plugin discovery: entry points in group ``dscsc`` -> pluggy -> a registry of components.

Built-ins are an ordinary entry point of this distribution, so they load exactly like third-party
plugins. One broken plugin never takes the rest down: a plugin that fails to import or register,
implements an unknown hook, or registers a name another plugin already holds is skipped with one
recorded warning naming its distribution (or raised under ``strict``). In a clash the built-ins
keep their names; among other installed plugins the first one loaded does. A plugin the user named
(``--plugin``) that fails or clashes is an error: a run without it would not be the run they meant.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as metadata
import importlib.util
import os
import sys
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from dscsc_core.errors import ConfigError, PluginError, UnknownComponentError
from dscsc_core.plugin_api.hookspecs import DEFAULTS_HOOK, PRESET_HOOK, PROJECT, DscscSpecs
from dscsc_core.plugin_api.kinds import KIND_NAMES, PLUGIN_KINDS, PluginKind, plugin_kind
from dscsc_core.plugin_api.params import Component, Param
from dscsc_core.plugin_api.run_files import merge_preset, read_toml

ENTRY_POINT_GROUP = PROJECT
# This package's own distribution: its plugins (the built-ins) keep their names in a clash.
HOST_DISTRIBUTION = PROJECT
DISABLE_VARIABLE = "DSCSC_DISABLE_PLUGINS"
STRICT_VARIABLE = "DSCSC_STRICT_PLUGINS"


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

    @property
    def label(self) -> str:
        return f"{self.kind} '{self.name}'"


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

    @property
    def label(self) -> str:
        return f"preset '{self.name}'"


@dataclass(frozen=True)
class DefaultChoice:
    """The component of ``kind`` that a run uses when it selects none (a plugin's ``register(kind, name)``)."""

    kind: PluginKind
    name: str
    provider: str

    @property
    def label(self) -> str:
        return f"the default {self.kind.name}"


@dataclass
class Registry:
    """Every component the loaded plugins registered, keyed by (kind, name), their presets and defaults."""

    components: dict[tuple[str, str], ComponentInfo] = field(default_factory=dict)
    presets: dict[str, PresetInfo] = field(default_factory=dict)
    defaults: dict[str, DefaultChoice] = field(default_factory=dict)  # kind -> its default component
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

    def default_selections(self) -> dict[str, str]:
        """The run settings that select each kind's default component (``{"miner": "knn", ...}``)."""
        return {choice.kind.option: choice.name for choice in self.defaults.values()}

    def is_default(self, info: ComponentInfo) -> bool:
        choice = self.defaults.get(info.kind)
        return choice is not None and choice.name == info.name

    def __iter__(self):
        return iter(sorted(self.components.values(), key=lambda c: (KIND_NAMES.index(c.kind), c.name)))


def _env_list(variable: str) -> set[str]:
    return {item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()}


def _distribution_of(entry_point: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "unknown", "unknown"
    return dist.metadata["Name"], dist.version


@dataclass(frozen=True)
class PluginOrigin:
    """Where a loaded plugin came from: the distribution and version of its entry point, or, for a
    plugin not installed (``distribution == "local"``), in ``version`` the file or module the user
    named it by (as results record it)."""

    distribution: str
    version: str
    named_by_user: bool = False

    @property
    def installed(self) -> bool:
        return self.distribution != "local"


class PluginLoader:
    """Builds a fresh ``PluginManager('dscsc')`` and the registry its plugins provide."""

    def __init__(self, strict: bool | None = None, disabled: Iterable[str] | None = None):
        self.strict = bool(int(os.environ.get(STRICT_VARIABLE, "0") or 0)) if strict is None else strict
        self.disabled = set(disabled) if disabled is not None else _env_list(DISABLE_VARIABLE)
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(DscscSpecs)
        self.origins: dict[str, PluginOrigin] = {}
        self.registry = Registry()

    def _fail(self, message: str) -> None:
        if self.strict:
            raise PluginError(message)
        self.registry.warnings.append(message)

    def _origin(self, plugin: str) -> PluginOrigin:
        return self.origins.get(plugin, PluginOrigin("local", ""))

    def describe(self, plugin: str) -> str:
        """``plugin 'x' (distribution d 1.0)``, or where a plugin that is not installed came from."""
        origin = self._origin(plugin)
        if origin.installed:
            return f"plugin '{plugin}' (distribution {origin.distribution} {origin.version})"
        return f"plugin '{plugin}'" + (f" ({origin.version})" if origin.version else "")

    def _remedy(self, plugin: str) -> str:
        """How the user gets rid of a plugin that breaks or clashes."""
        origin = self._origin(plugin)
        if origin.installed:
            return f"uninstall {origin.distribution} or set {DISABLE_VARIABLE}={plugin}"
        return "rename one of them"

    def load_entry_points(self) -> None:
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in self.disabled:
                continue
            origin = PluginOrigin(*_distribution_of(entry_point))
            if self.manager.has_plugin(entry_point.name):
                holder = self.origins[entry_point.name]
                self._fail(f"plugin '{entry_point.name}' of distribution {origin.distribution} {origin.version} is "
                           f"not loaded: {holder.distribution} {holder.version} already provides a plugin of that "
                           f"name; uninstall one of them")
                continue
            self.origins[entry_point.name] = origin
            try:
                module = entry_point.load()
            except Exception as exc:  # a broken third-party plugin must not break the host
                self._fail(f"{self.describe(entry_point.name)} failed to import: {type(exc).__name__}: {exc}; "
                           f"{self._remedy(entry_point.name)}")
                continue
            self.add_plugin(module, entry_point.name, origin)

    def add_plugin(self, plugin: ModuleType | object, name: str, origin: PluginOrigin | None = None) -> None:
        self.origins[name] = origin or self._origin(name)
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:
            self._fail(f"{self.describe(name)} failed to register: {type(exc).__name__}: {exc}")

    def add_module(self, module_name: str) -> None:
        self.add_plugin(importlib.import_module(module_name), module_name)

    def add_local(self, spec: str) -> None:
        """A plugin the user named (``--plugin``): a ``.py`` file or an importable module.

        Unlike an installed plugin that breaks, a named one that cannot load is an error: the
        user asked for it, and a run without it would not be the run they meant. A module that an
        installed plugin already loaded is that plugin: it is used once, with a warning.
        """
        module = _import_local(spec)
        if self.manager.has_plugin(module.__name__):
            return  # named twice (a run file's plugins and --plugin)
        loaded_as = self.manager.get_name(module)
        if loaded_as is not None:
            self.registry.warnings.append(f"plugin '{spec}' is already loaded as {self.describe(loaded_as)}; "
                                          "using that")
            return
        self.origins[module.__name__] = PluginOrigin("local", spec, named_by_user=True)
        try:
            self.manager.register(module, name=module.__name__)
        except Exception as exc:
            raise PluginError(f"plugin '{spec}' failed to register: {type(exc).__name__}: {exc}") from None

    def collect(self) -> Registry:
        self._check_hooks()
        for kind in PLUGIN_KINDS:
            for impl in self._impls(kind.hook):
                self._call_component_impl(kind, impl)
        for impl in self._impls(PRESET_HOOK):
            self._call_preset_impl(impl)
        for impl in self._impls(DEFAULTS_HOOK):
            self._call_defaults_impl(impl)
        self._check_defaults()
        return self.registry

    def _impls(self, hook: str) -> list[pluggy.HookImpl]:
        """A hook's implementations, the built-ins' first, then installed plugins', then the rest, so
        that the first registration of a name, which keeps it, is a built-in's where there is one."""

        def rank(impl: pluggy.HookImpl) -> int:
            origin = self._origin(impl.plugin_name)
            return 0 if origin.distribution == HOST_DISTRIBUTION else 1 if origin.installed else 2

        return sorted(getattr(self.manager.hook, hook).get_hookimpls(), key=rank)

    def _check_hooks(self) -> None:
        """A plugin function marked as a hook that no spec declares (a typo) is reported, not run."""
        known = [name for name in dir(DscscSpecs) if name.startswith(f"{PROJECT}_")]
        for name, caller in vars(self.manager.hook).items():
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    close = difflib.get_close_matches(name, known, n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    self._fail(f"{self.describe(impl.plugin_name)} implements unknown hook '{name}'{hint}")

    def _call_preset_impl(self, impl: pluggy.HookImpl) -> None:
        def preset(path: Path | str) -> PresetInfo:
            path = Path(path)
            if not path.is_file():
                raise PluginError(f"preset file {path} does not exist")
            return PresetInfo(path.stem, path, impl.plugin_name, self.registry.presets)

        self._call_hook(impl, "presets", preset, self.registry.presets, lambda info: info.name)

    def _call_component_impl(self, kind: PluginKind, impl: pluggy.HookImpl) -> None:
        origin = self._origin(impl.plugin_name)

        def component(factory: type) -> ComponentInfo:
            return _validated(kind, factory, impl.plugin_name, origin.distribution, origin.version)

        self._call_hook(impl, f"{kind.name}s", component, self.registry.components, lambda info: (kind.name, info.name))

    def _call_defaults_impl(self, impl: pluggy.HookImpl) -> None:
        def default(kind: str, name: str) -> DefaultChoice:
            return DefaultChoice(plugin_kind(kind), str(name), impl.plugin_name)

        self._call_hook(impl, "defaults", default, self.registry.defaults, lambda choice: choice.kind.name)

    def _call_hook(self, impl: pluggy.HookImpl, what: str, make_info: Callable[[Any], Any], table: dict,
                   key: Callable[[Any], Any]) -> None:
        """Call one plugin's register hook; a failing hook is skipped, and so is a name another plugin holds."""
        provider = impl.plugin_name
        found: list = []
        try:
            impl.function(register=lambda *item: found.append(make_info(*item)))
        except Exception as exc:
            self._fail(f"{self.describe(provider)} failed to register its {what}: {type(exc).__name__}: {exc}")
            return
        for info in found:
            holder = table.get(key(info))
            if holder is None:
                table[key(info)] = info
            else:
                self._clash(info.label, holder.provider, provider)

    def _clash(self, label: str, holder: str, provider: str) -> None:
        message = (f"{label} is registered by {self.describe(holder)} and by {self.describe(provider)}; "
                   f"'{holder}' keeps it")
        if self._origin(provider).named_by_user:
            raise PluginError(f"{message}: rename it in {self._origin(provider).version}")
        self._fail(f"{message}: {self._remedy(provider)}")

    def _check_defaults(self) -> None:
        for kind_name, choice in list(self.registry.defaults.items()):
            if (kind_name, choice.name) not in self.registry.components:
                del self.registry.defaults[kind_name]
                self._fail(f"{self.describe(choice.provider)} names {choice.kind.name} '{choice.name}' as the "
                           f"default, but no plugin registers it")


def _validated(kind: PluginKind, factory: type, provider: str, distribution: str, version: str) -> ComponentInfo:
    if not (isinstance(factory, type) and issubclass(factory, kind.base)):
        raise PluginError(f"plugin '{provider}' registered {factory!r} as a {kind.name}, "
                          f"but it is not a {kind.base.__name__}")
    if not factory.name:
        raise PluginError(f"plugin '{provider}' registered {factory.__qualname__} without a name")
    missing = sorted(getattr(factory, "__abstractmethods__", ()))
    if missing:
        raise PluginError(f"plugin '{provider}' registered {kind.name} '{factory.name}' without its "
                          f"{', '.join(missing)} method (every {kind.base.__name__} implements it)")
    return ComponentInfo(kind.name, factory.name, factory, provider, distribution, version)


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
