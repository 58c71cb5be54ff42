"""Every key by which dscsc recognises a run it has seen, derived from the settings' declared roles.

- ``run_fingerprint``: the resume check (a checkpoint continues only the run that made it);
- ``record_fingerprint`` / ``settings_fingerprint``: the key of a stored bench/ablate/tune record (the seed is
  stored beside it; a shallow solver on the pixels is identified by what it reads only);
- ``training_fingerprint``: what decides a run's C, so that clusterer-only candidates share one training;
- ``stage1_fingerprint``: the Stage I cache key.

Each is a digest of the settings a ``Role`` puts in it (``dscsc_core.settings``); none lists setting names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import torch

from dscsc_core import __version__
from dscsc_core.plugin_api.kinds import SELECTIONS
from dscsc_core.run.parameters import parameter_owner
from dscsc_core.settings import (
    SETTING_BY_NAME,
    STAGE1_ALWAYS,
    STAGE1_WITH_HEAD,
    STAGE1_WITH_SCH,
    names_where,
    without_earlier_values,
)

# Bump when Stage I's computation changes, so stored Stage I runs of older code are not reused.
# 2: a "drh" Stage I beside a non-default head shuffles as the default head's run does (format 1: as its own).
STAGE1_FORMAT = 2

_RUNTIME = frozenset(names_where(lambda role: not role.shapes_result))
_AFTER_C = frozenset(names_where(lambda role: not role.shapes_coef))
_PIXEL_SOLVER = names_where(lambda role: role.pixel_solver)


def _digest(values: Mapping[str, Any], length: int) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:length]


def result_identity(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that shape a run's result: less those that only say where and how it runs, less the
    later-added ones at their earlier value. Keys that are not settings (``params``, ``data_shape``) stay."""
    return {key: value for key, value in without_earlier_values(dict(settings)).items() if key not in _RUNTIME}


def result_fingerprint(settings: Mapping[str, Any]) -> str:
    """The digest of ``result_identity(settings)``: what every key below comes down to."""
    return _digest(result_identity(settings), 20)


def run_fingerprint(run) -> str:
    """A prepared run's identity for resuming: every setting that shapes the result, and the data's shape."""
    return result_fingerprint({**run.config.to_dict(), "data_shape": list(run.data.images.shape)})


def record_fingerprint(settings: Mapping[str, Any]) -> str:
    """The key of a stored record of a run with these resolved settings (``RunConfig.to_dict``, as a record
    keeps them): the seed is stored beside it, and a shallow solver on the pixels is identified by the settings
    (and plugin parameters of the kinds) it reads, not by the training settings of the recipe it is built on."""
    settings = {key: value for key, value in settings.items() if key != "seed"}
    if solves_pixels(settings):
        kinds = {option for option in _PIXEL_SOLVER if option in SELECTIONS}
        params = {key: value for key, value in settings.get("params", {}).items() if key.split(".", 1)[0] in kinds}
        settings = {**{key: settings[key] for key in _PIXEL_SOLVER if key in settings}, "params": params}
    return result_fingerprint(settings)


def solves_pixels(settings: Mapping[str, Any]) -> bool:
    """Whether these resolved settings run a shallow solver on the pixels (no network at all)."""
    return settings.get("solver") is not None and settings.get("solver_input", "pixels") == "pixels"


def settings_fingerprint(config) -> str:
    """``record_fingerprint`` of a resolved ``RunConfig``."""
    return record_fingerprint(config.to_dict())


def training_fingerprint(run) -> str | None:
    """What decides a run's C: every setting but those that act after it (the clusterer and its parameters),
    and the data's shape. None where training clusters C itself (an objective's pseudo-labels), so that the
    clusterer shapes C too."""
    config, objective = run.config, run.components.get("objective")
    if objective is not None and objective.relabel_every > 0:
        return None
    settings = {key: value for key, value in config.to_dict().items() if key not in _AFTER_C and key != "params"}
    params = {key: value for key, value in config.params.items() if parameter_owner(key, run.infos)[0] not in _AFTER_C}
    return result_fingerprint({**settings, "params": params, "data_shape": list(run.data.images.shape)})


def _images_digest(images: torch.Tensor) -> str:
    return hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _in_stage1(stage1_role: str | None, objective: str) -> bool:
    if stage1_role == STAGE1_ALWAYS:
        return True
    if stage1_role == STAGE1_WITH_HEAD:
        return objective != "drh"  # a "drh" Stage I never touches the head
    return stage1_role == STAGE1_WITH_SCH and objective == "drh+sch"


def stage1_fingerprint(run) -> str:
    """Identity of a prepared run's Stage I: the images themselves (hashed), the settings and plugins whose
    role puts them in Stage I for this run's objective (with their parameters), the one pixel scale Stage I
    trains at, the device type, the code version and ``STAGE1_FORMAT``. The CPU thread count is not in it: it
    changes the rounding, not the method."""
    config, parts = run.config, run.components
    key: dict[str, Any] = {}
    for name, setting in SETTING_BY_NAME.items():
        if not _in_stage1(setting.role.stage1, config.pretrain_objective):
            continue
        value = getattr(config, name)
        if name in SELECTIONS:
            key[name] = [value, parts[name].config]
        elif not setting.role.at_earlier_value(value):
            key[name] = value
    # Stage I is stored at its own pixel scale (before the move to input_scale).
    key["scale"] = config.pretrain_input_scale if config.pretrain_input_scale is not None else config.input_scale
    key.update(format=STAGE1_FORMAT, version=__version__, device=run.device.type,
               images=_images_digest(run.data.images), shape=list(run.data.images.shape))
    return _digest(key, 24)
