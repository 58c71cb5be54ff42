"""Plugin parameters of a run: each goes to the selected plugin that declares it.

``k`` goes to the one selected plugin declaring ``k``; ``miner.k`` names the kind explicitly. Text values
(flags, grids) are parsed by the declaring plugin's ``Param``.
"""

from __future__ import annotations

from typing import Any

from dscsc_core.errors import ConfigError, UnknownParameterError
from dscsc_core.plugin_api.kinds import selection_setting
from dscsc_core.plugin_api.registry import ComponentInfo


def typed_params(params: dict[str, Any], selected: dict[str, ComponentInfo]) -> dict[str, Any]:
    """Text values parsed by the declaring plugin's ``Param`` (``"20"`` -> 20); typed values kept as given."""
    typed = {}
    for key, value in params.items():
        option, name = parameter_owner(key, selected)
        if isinstance(value, str):
            param = next(p for p in selected[option].params if p.name == name)
            value = param.parse(value, owner=selected[option].label)
        typed[key] = value
    return typed


def route_params(params: dict[str, Any], selected: dict[str, ComponentInfo]) -> dict[str, dict[str, Any]]:
    """Send each plugin parameter to the selected component that declares it.

    ``k`` goes to the one selected plugin declaring ``k``; ``miner.k`` names the kind explicitly.
    """
    routed: dict[str, dict[str, Any]] = {option: {} for option in selected}
    for key, value in params.items():
        option, name = parameter_owner(key, selected)
        routed[option][name] = value
    return routed


def _declares(info: ComponentInfo, name: str) -> bool:
    return any(param.name == name for param in info.params)


def parameter_owner(key: str, selected: dict[str, ComponentInfo]) -> tuple[str, str]:
    """(selection setting, parameter name) that the plugin parameter ``key`` belongs to."""
    prefix, _, name = key.rpartition(".")
    name = name.replace("-", "_")
    if prefix:
        option = selection_setting(prefix)
        if option not in selected:
            raise ConfigError(f"unknown plugin kind '{prefix}' in '{key}'; use one of: {', '.join(selected)}")
        if not _declares(selected[option], name):
            raise _unknown_param(key, [selected[option]])
        return option, name
    owners = [option for option, info in selected.items() if _declares(info, name)]
    if not owners:
        raise _unknown_param(key, list(selected.values()))
    if len(owners) > 1:
        raise UnknownParameterError("plugin parameter {key} is declared by several selected plugins; write one of: "
                                    "{qualified}", key=name, qualified=[f"{option}.{name}" for option in owners])
    return owners[0], name


def _unknown_param(key: str, infos: list[ComponentInfo]) -> UnknownParameterError:
    accepted = sorted({p.name for info in infos for p in info.params})
    owners = ", ".join(info.label for info in infos)
    if not accepted:
        return UnknownParameterError(f"unknown plugin parameter {{key}}: no selected plugin declares it ({owners} "
                                     "accept none)", key=key)
    return UnknownParameterError(f"unknown plugin parameter {{key}}: no selected plugin declares it ({owners} "
                                 "accept: {accepted})", key=key, accepted=accepted)
