"""Every key by which dscsc recognises a run it has seen, derived from the settings' declared roles and the
content of the data as loaded.

- ``run_fingerprint``: the resume check (a checkpoint continues only the run that made it);
- ``record_fingerprint`` / ``settings_fingerprint``: the key of a stored bench/ablate/tune record (the seed is
  stored beside it; a shallow solver on the pixels is identified by what it reads only);
- ``training_fingerprint``: what decides a run's C, so that clusterer-only candidates share one training;
- ``stage1_fingerprint``: the Stage I cache key.

Each is a digest of the settings a ``Role`` puts in it (``dscsc_core.settings``); none lists setting names.
The data enter as ``data_digest``, a SHA-256 of the images and labels as loaded: the resume key and the Stage I
key hold it, and a stored record carries it beside its settings key (``evaluation.repeats``), so no reuse
survives a rewrite of the data file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
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
# 3: keyed on the digest of the images and the labels, and stored with a checksum.
STAGE1_FORMAT = 3

_RUNTIME = frozenset(names_where(lambda role: not role.shapes_result))
_AFTER_C = frozenset(names_where(lambda role: not role.shapes_coef))
_PIXEL_SOLVER = names_where(lambda role: role.pixel_solver)


def _digest(values: Mapping[str, Any], length: int) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:length]


def result_identity(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that shape a run's result: less those that only say where and how it runs, less the
    later-added ones at their earlier value. Keys that are not settings (``params``, ``data``) stay."""
    return {key: value for key, value in without_earlier_values(dict(settings)).items() if key not in _RUNTIME}


def result_fingerprint(settings: Mapping[str, Any]) -> str:
    """The digest of ``result_identity(settings)``: what every key below comes down to."""
    return _digest(result_identity(settings), 20)


def data_digest(images: torch.Tensor, labels: np.ndarray | None) -> str:
    """SHA-256 of the images (shape, dtype and values) and the labels as loaded."""
    digest = hashlib.sha256()
    pixels = images.detach().cpu().contiguous()
    digest.update(f"{tuple(pixels.shape)} {pixels.dtype}".encode())
    digest.update(pixels.numpy().tobytes())
    if labels is not None:
        labels = np.ascontiguousarray(np.asarray(labels))
        digest.update(f"labels {labels.shape} {labels.dtype}".encode())
        digest.update(labels.tobytes())
    return digest.hexdigest()[:32]


def run_fingerprint(run) -> str:
    """A prepared run's identity for resuming: every setting that shapes the result, and the data's content."""
    return result_fingerprint({**run.config.to_dict(), "data": run.data_digest})


def resume_mismatch(settings: Mapping[str, Any], data: str, run) -> str:
    """What differs between the run a checkpoint was made by (its ``settings`` and data digest) and ``run``."""
    if data != run.data_digest:
        return (f"the data changed since the checkpoint was made (images or labels of dataset '{run.data.name}' "
                "differ from the ones it trained on); resume needs the same data, or start a new run")
    then, now = result_identity(settings), result_identity(run.config.to_dict())
    changed = sorted(key for key in then.keys() | now.keys() if then.get(key) != now.get(key))
    if changed:
        return f"the checkpoint was made with other settings ({', '.join(changed)} differ); start a new run"
    return "the checkpoint was made by a different run (its key differs); start a new run"


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
    return result_fingerprint({**settings, "params": params, "data": run.data_digest})


def _in_stage1(stage1_role: str | None, objective: str) -> bool:
    if stage1_role == STAGE1_ALWAYS:
        return True
    if stage1_role == STAGE1_WITH_HEAD:
        return objective != "drh"  # a "drh" Stage I never touches the head
    return stage1_role == STAGE1_WITH_SCH and objective == "drh+sch"


def stage1_fingerprint(run) -> str:
    """Identity of a prepared run's Stage I: the data's content (``data_digest``), the settings and plugins whose
    role puts them in Stage I for this run's objective (with their parameters), the one pixel scale Stage I
    trains at, the device type, the code version and ``STAGE1_FORMAT``. The CPU thread count is not in it: it
    changes the rounding, not the method."""
    config, parts = run.config, run.components
    key: dict[str, Any] = {}
    for name, setting in SETTING_BY_NAME.items():
        if not _in_stage1(setting.role.stage1, config.pretrain_objective):
            continue
        value = getattr(config, name)
        if setting.role.at_earlier_value(value):  # also an optional plugin left unselected
            continue
        key[name] = [value, parts[name].config] if name in SELECTIONS else value
    # Stage I is stored at its own pixel scale (before the move to input_scale).
    key["scale"] = config.pretrain_input_scale if config.pretrain_input_scale is not None else config.input_scale
    key.update(format=STAGE1_FORMAT, version=__version__, device=run.device.type, data=run.data_digest)
    return _digest(key, 24)
