"""Run configuration: declared defaults < TOML file < command-line flags, validated in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, field, make_dataclass
from typing import Any

from dscsc_core.errors import ConfigError
from dscsc_core.plugin_api.kinds import SELECTIONS
from dscsc_core.plugin_api.run_files import drop_params_of, flatten_params
from dscsc_core.settings import RUN_SETTINGS, TRAINING_SETTINGS, TrainingConfig

_RUN_PARAM_BY_NAME = {p.name: p for p in RUN_SETTINGS}
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
            # A layer's own params come after its selections, so a plugin it picks keeps the parameters it gives.
            for key, value in sorted(layer.items(), key=lambda item: item[0] == "params"):
                if value is None:
                    continue
                if key == "params":
                    params.update(flatten_params(value))
                elif key in METADATA_TABLES:
                    continue
                elif key in _RUN_PARAM_BY_NAME:
                    if key in SELECTIONS and key in values and values[key] != value:
                        drop_params_of(params, key)
                    values[key] = value
                else:
                    raise ConfigError(
                        f"unknown setting '{key}'; allowed: {', '.join(sorted(_RUN_PARAM_BY_NAME))}, params"
                    )
        parsed = {name: _RUN_PARAM_BY_NAME[name].parse(value) for name, value in values.items()}
        return cls(**parsed, params=params)


RunConfig = make_dataclass(
    "RunConfig",
    [(p.name, Any, field(default=p.default)) for p in RUN_SETTINGS]
    # Plugin parameters: plain ("k") or qualified by kind ("miner.k"); routed when the run starts.
    + [("params", dict, field(default_factory=dict))],
    bases=(_RunConfigMethods,),
    namespace={"__module__": __name__},
)
RunConfig.__doc__ = "A fully resolved run: plugin choices, method settings (RUN_SETTINGS) and plugin parameters."


