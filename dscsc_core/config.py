"""Run configuration: declared defaults < TOML file < command-line flags, validated in one place."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, field, make_dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .kinds import PLUGIN_KINDS, SELECTIONS, plugin_kind
from .params import Param
from .settings import RUN_ONLY_SETTINGS, TRAINING_SETTINGS, TrainingConfig

# One setting per plugin kind picks the plugin; unset, the registry's default for the kind (named by
# the plugins, e.g. the built-ins) is used, so that the core never names a plugin.
SELECTION_SETTINGS: tuple[Param, ...] = tuple(Param(kind.option, str, None, kind.help) for kind in PLUGIN_KINDS)

# Every scalar setting of a run, with its default, type and allowed range.
RUN_PARAMS: tuple[Param, ...] = (*SELECTION_SETTINGS, *TRAINING_SETTINGS, *RUN_ONLY_SETTINGS)
_RUN_PARAM_BY_NAME = {p.name: p for p in RUN_PARAMS}
# Keys a run file may carry that are not run settings: a preset's description/provenance, and the
# local plugins to load before the run is resolved.
METADATA_TABLES = frozenset({"preset", "plugins"})
CORE_SETTINGS = frozenset(_RUN_PARAM_BY_NAME)
_TRAINING_FIELDS = tuple(p.name for p in TRAINING_SETTINGS)


class _RunConfigMethods:
    def training(self) -> TrainingConfig:
        return TrainingConfig(**{name: getattr(self, name) for name in _TRAINING_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_layers(cls, *layers: Mapping[str, Any]) -> RunConfig:
        """Merge layers (later wins) over the declared defaults and validate every value."""
        values: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for layer in layers:
            for key, value in layer.items():
                if value is None:
                    continue
                if key == "params":
                    params.update(flatten_params(value))
                elif key in METADATA_TABLES:
                    continue
                elif key in _RUN_PARAM_BY_NAME:
                    if key in SELECTIONS and key in values and values[key] != value:
                        _drop_params_of(params, key)
                    values[key] = value
                else:
                    raise ConfigError(
                        f"unknown setting '{key}'; allowed: {', '.join(sorted(_RUN_PARAM_BY_NAME))}, params"
                    )
        parsed = {name: _RUN_PARAM_BY_NAME[name].parse(value) for name, value in values.items()}
        return cls(**parsed, params=params)


RunConfig = make_dataclass(
    "RunConfig",
    [(p.name, Any, field(default=p.default)) for p in RUN_PARAMS]
    # Plugin parameters: plain ("k") or qualified by kind ("miner.k"); routed when the run starts.
    + [("params", dict, field(default_factory=dict))],
    bases=(_RunConfigMethods,),
    namespace={"__module__": __name__},
)
RunConfig.__doc__ = "A fully resolved run: plugin choices, method settings (RUN_PARAMS) and plugin parameters."


def _drop_params_of(params: dict[str, Any], option: str) -> None:
    """A later layer picked another plugin for ``option``: parameters written for the earlier one
    (``augment.degrees`` of a preset whose augmentation a flag now replaces) no longer apply."""
    prefixes = {f"{word}." for word in plugin_kind(option).words}
    for key in [k for k in params if any(k.startswith(p) for p in prefixes)]:
        del params[key]


def merge_preset(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A preset built on ``base``: its own settings win; plugin parameters merge per key, except that
    a plugin the preset replaces takes none of the base's parameters with it. The ``[preset]`` table
    is the preset's own, with the base's provenance for every value the preset does not re-explain."""
    merged = {**base, **own}
    params = flatten_params(base.get("params", {}))
    for option in SELECTIONS:
        if option in own and own[option] != base.get(option):
            _drop_params_of(params, option)
    params.update(flatten_params(own.get("params", {})))
    merged["params"] = params
    provenance = {**base.get("preset", {}).get("provenance", {}), **own.get("preset", {}).get("provenance", {})}
    merged["preset"] = {**own.get("preset", {}), "provenance": provenance}
    return merged


def flatten_params(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"miner": {"k": 15}}`` -> ``{"miner.k": 15}``; plain keys stay plain."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"'params' must be a table of plugin parameters; got {table!r}")
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def read_toml(path: Path | str) -> dict[str, Any]:
    """Read a run configuration file; every problem becomes a one-line ConfigError."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); TOML files must be UTF-8") from None
    return {key.replace("-", "_"): value for key, value in data.items()}


def local_plugins(layer: Mapping[str, Any], base: Path | None = None) -> list[str]:
    """The ``plugins = [...]`` list of a run file; relative ``.py`` paths are taken from the file's folder."""
    entries = layer.get("plugins", [])
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError(f"'plugins' must be a list of file paths or module names; got {entries!r}")
    resolved = []
    for entry in entries:
        path = Path(entry).expanduser()
        if base is not None and entry.endswith(".py") and not path.is_absolute():
            path = base / path
        resolved.append(str(path) if entry.endswith(".py") else entry)
    return resolved
