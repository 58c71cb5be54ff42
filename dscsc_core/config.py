"""Run configuration: declared defaults < TOML file < command-line flags, validated in one place."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .losses import SEM_REDUCTIONS
from .params import Param
from .trainer import TrainingConfig

# Which plugin kind each selection option picks; ``augment`` is the CLI's word for the augmentation policy.
SELECTIONS: dict[str, str] = {
    "dataset": "dataset",
    "encoder": "encoder",
    "augment": "augmentation",
    "miner": "miner",
    "regularizer": "regularizer",
    "clusterer": "clusterer",
}

_TRAINING_DEFAULTS = TrainingConfig()


def _method(name: str, type_: Any, help_text: str, **limits: float) -> Param:
    """A setting of the method itself: its default is TrainingConfig's."""
    return Param(name, type_, getattr(_TRAINING_DEFAULTS, name), help_text, **limits)


# Every scalar setting of a run, with its default, type and allowed range.
RUN_PARAMS: tuple[Param, ...] = (
    Param("dataset", str, "digits", "dataset source"),
    Param("encoder", str, "conv1", "encoder + mirrored decoder"),
    Param("augment", str, "geometric", "augmentation policy building the positive view"),
    Param("miner", str, "knn", "negative miner of the contrastive head"),
    Param("regularizer", str, "l2", "penalty R(C) of the self-expression loss"),
    Param("clusterer", str, "dsc-post", "turns C into labels"),
    _method("pretrain_epochs", int, "Stage I epochs (full-batch steps), no self-expression", min=0),
    _method("epochs", int, "Stage II epochs (full-batch steps) with self-expression", min=0),
    _method("lr", float, "Adam learning rate", min=0),
    Param("alpha", float, None, "SEM trade-off alpha; default 10^(K/10-3)", min=0),
    _method("beta", float, "weight of the contrastive loss", min=0),
    _method("gamma", float, "weight of the self-expression loss", min=0),
    Param("sem_reduction", str, _TRAINING_DEFAULTS.sem_reduction,
          "self-expression loss as printed (sum over samples) or per sample (mean, the footing of DRH and SCH)",
          choices=SEM_REDUCTIONS),
    _method("temperature", float, "temperature rho of the contrastive loss", min=1e-6),
    _method("head_dim", int, "output size of the contrastive head (paper: 64/128/256)", min=1),
    _method("head_hidden", int, "hidden width of the contrastive head", min=1),
    _method("coef_init_std", float, "std of the random initial coefficients", min=0),
    _method("pretrain_tol", float, "stop Stage I when reconstruction improves less (relative)", min=0),
    _method("pretrain_patience", int, "window in epochs of the Stage I plateau rule", min=1),
    Param("input_scale", float, 1.0, "multiply pixel values by this before training", min=0),
    Param("n_clusters", int, None, "number of clusters; default: from the dataset's labels", min=2),
    _method("eval_every", int, "score C with the clusterer every E Stage II epochs when labels exist (0: off)",
            min=0),
    _method("checkpoint_every", int, "save a checkpoint in --out every E epochs (0: only on Ctrl-C/SIGTERM)", min=0),
    Param("data_root", str, None, "folder holding dataset files; default $DSCSC_DATA, else ~/.local/share/dscsc"),
    _method("seed", int, "seed of init, augmentation and clustering", min=0, max=2**32 - 1),
    Param("device", str, "auto", "auto, cpu, cuda or cuda:N"),
)
_RUN_PARAM_BY_NAME = {p.name: p for p in RUN_PARAMS}
# Keys a run file may carry that are not run settings: a preset's description/provenance, and the
# local plugins to load before the run is resolved.
METADATA_TABLES = frozenset({"preset", "plugins"})
CORE_SETTINGS = frozenset(_RUN_PARAM_BY_NAME)
_TRAINING_FIELDS = {f.name for f in fields(TrainingConfig)}


def _default(name: str) -> Any:
    return field(default=_RUN_PARAM_BY_NAME[name].default)


@dataclass
class RunConfig:
    """A fully resolved run: plugin choices, method settings and plugin parameters."""

    dataset: str = _default("dataset")
    encoder: str = _default("encoder")
    augment: str = _default("augment")
    miner: str = _default("miner")
    regularizer: str = _default("regularizer")
    clusterer: str = _default("clusterer")
    pretrain_epochs: int = _default("pretrain_epochs")
    epochs: int = _default("epochs")
    lr: float = _default("lr")
    alpha: float | None = _default("alpha")
    beta: float = _default("beta")
    gamma: float = _default("gamma")
    sem_reduction: str = _default("sem_reduction")
    temperature: float = _default("temperature")
    head_dim: int = _default("head_dim")
    head_hidden: int = _default("head_hidden")
    coef_init_std: float = _default("coef_init_std")
    pretrain_tol: float = _default("pretrain_tol")
    pretrain_patience: int = _default("pretrain_patience")
    input_scale: float = _default("input_scale")
    n_clusters: int | None = _default("n_clusters")
    eval_every: int = _default("eval_every")
    checkpoint_every: int = _default("checkpoint_every")
    data_root: str | None = _default("data_root")
    seed: int = _default("seed")
    device: str = _default("device")
    # Plugin parameters: plain ("k") or qualified by kind ("miner.k"); routed when the run starts.
    params: dict[str, Any] = field(default_factory=dict)

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


def _drop_params_of(params: dict[str, Any], option: str) -> None:
    """A later layer picked another plugin for ``option``: parameters written for the earlier one
    (``augment.degrees`` of a preset whose augmentation a flag now replaces) no longer apply."""
    prefixes = {f"{option}.", f"{SELECTIONS[option]}."}
    for key in [k for k in params if any(k.startswith(p) for p in prefixes)]:
        del params[key]


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
