"""TOML run files: the presets plugins ship and a user's own run file. Reading one, flattening its plugin
parameters, and layering a preset on the base it names."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dscsc_core.errors import ConfigError
from dscsc_core.plugin_api.kinds import SELECTIONS, plugin_kind


def drop_params_of(params: dict[str, Any], option: str) -> None:
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
            drop_params_of(params, option)
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
