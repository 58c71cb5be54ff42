"""Declared plugin parameters: one place that parses, coerces and range-checks values."""

from __future__ import annotations

import math
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dscsc_core.errors import ParameterError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _parse_int_tuple(value: Any) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    parsed = []
    for item in items:
        if isinstance(item, float) or isinstance(item, bool):
            raise ValueError(f"expected whole numbers, got {item!r}")
        parsed.append(int(str(item).strip()))
    if not parsed:
        raise ValueError("expected at least one number")
    return tuple(parsed)


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    return int(str(value).strip())


def _parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return float(str(value).strip()) if isinstance(value, str) else float(value)


_PARSERS: dict[Any, Callable[[Any], Any]] = {
    int: _parse_int,
    float: _parse_float,
    bool: _parse_bool,
    str: lambda v: str(v),
    "ints": _parse_int_tuple,
}

# Whole numbers must fit the 64-bit integers of torch and NumPy, whatever a parameter's own range.
_INT_LIMITS = (-(2**63), 2**63 - 1)

_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "str", "ints": "comma-separated ints"}


@dataclass(frozen=True)
class Param:
    """One parameter a plugin accepts: name, type, default, help and allowed range.

    ``type`` is ``int``, ``float``, ``bool``, ``str`` or ``"ints"`` (a tuple of ints,
    written ``3,3,5`` on the command line). ``default=None`` means "decided by the plugin".
    """

    name: str
    type: Any
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.type, str(self.type))

    def parse(self, value: Any, owner: str = "") -> Any:
        """Coerce ``value`` to this parameter's type and check its range."""
        where = f"{owner} parameter '{self.name}'" if owner else f"parameter '{self.name}'"
        if value is None:
            return None
        try:
            parsed = _PARSERS[self.type](value)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{where} expects {self.type_name}, got {value!r}") from exc
        self._check_range(parsed, where)
        return parsed

    def _check_range(self, parsed: Any, where: str) -> None:
        values = parsed if isinstance(parsed, tuple) else (parsed,)
        if self.choices is not None and parsed not in self.choices:
            raise ParameterError(f"{where} must be one of {', '.join(self.choices)}; got {parsed!r}")
        for value in values:
            if isinstance(value, float) and not math.isfinite(value):
                raise ParameterError(f"{where} must be a finite number; got {value!r}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                low, high = self._limits(value)
                if low is not None and value < low:
                    raise ParameterError(f"{where} must be >= {low}; got {value!r}")
                if high is not None and value > high:
                    raise ParameterError(f"{where} must be <= {high}; got {value!r}")

    def _limits(self, value: int | float) -> tuple[float | None, float | None]:
        if not isinstance(value, int):
            return self.min, self.max
        low, high = _INT_LIMITS
        return (low if self.min is None else max(self.min, low)), (high if self.max is None else min(self.max, high))


class Component(ABC):  # noqa: B024 -- the kinds declare the abstract methods; the base only makes them bind
    """Base of every plugin component: declared ``params`` become validated attributes.

    An abstract base: a subclass that leaves out its kind's ``@abstractmethod`` cannot be built, and the
    registry refuses to register it, naming the missing method.

    Subclasses set ``name``, ``summary`` and ``params``; ``Component(**values)`` parses each
    value, fills defaults, and rejects names the component does not declare.
    """

    kind: ClassVar[str] = "component"
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - {p.name for p in self.params}
        if unknown:
            allowed = ", ".join(p.name for p in self.params) or "none"
            raise ParameterError(
                f"{self.kind} '{self.name}' has no parameter {', '.join(sorted(unknown))}; allowed: {allowed}"
            )
        self.config: dict[str, Any] = {}
        for param in self.params:
            raw = values.get(param.name, param.default)
            value = param.parse(raw, owner=f"{self.kind} '{self.name}'")
            self.config[param.name] = value
            setattr(self, param.name, value)

    def check_context(self, context: RunContext) -> None:  # noqa: B027 -- optional hook, no-op by default
        """Reject settings that cannot work for this data (called before training starts)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


@dataclass(frozen=True)
class RunContext:
    """What a component may know about the run before training: sizes, never the trainer."""

    n_samples: int
    n_clusters: int
    input_shape: tuple[int, int, int]
    extra: dict[str, Any] = field(default_factory=dict)
    data_root: Any = None  # the run's DataRoot: plugins resolve user-named files (e.g. weights) against it
    # The fewest samples a miner or the head sees at once: N, or the smallest Stage II mini-batch.
    batch_samples: int | None = None

    @property
    def samples_at_once(self) -> int:
        return self.batch_samples if self.batch_samples is not None else self.n_samples
