"""A finished Stage I, stored once per (Stage I settings, data, seed) and reused by every Stage II that shares it.

Table 4's rows, a k sweep, ``dscsc tune`` candidates and ``bench`` reruns often differ only after
Stage I; with a cache folder they pay for Stage I once. The key holds exactly what shapes Stage I:
the images themselves (hashed) and Stage I's pixel scale, the encoder and its parameters, the
optimiser and stopping settings, the seed, the device type, and, when Stage I trains SCH on augmented views
(``pretrain_objective = "drh+sch"``), the head's sizes, the augmentation, the miner and SCH's weights too.
DSC-Net's plain autoencoder Stage I (``"drh"``) leaves the head as drawn and is trained on the random numbers
of a default-head network whatever the run's head, so DSCSC and its recipe share it where only their heads
differ (the trainer keeps each run's own head and random state). The CPU thread count is not in the key (it
changes the rounding, not the method): a Stage I trained on two threads and reused by a run on one gives what
that Stage I followed by a one-thread Stage II gives.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .checkpoint import StageOne
from .settings import without_added_later_defaults

# Bump when Stage I's computation changes, so stored Stage I runs of older code are not reused.
# 2: a "drh" Stage I beside a non-default head shuffles as the default head's run does (format 1: as its own).
STAGE1_FORMAT = 2

_ALWAYS = ("lr", "pretrain_epochs", "pretrain_tol", "pretrain_patience", "pretrain_objective", "seed")
_HEAD = ("head_dim", "head_hidden")
_WITH_SCH = ("beta", "temperature", "drh_views")
_ADDED_LATER = ("pretrain_lr", "pretrain_batch_size", "precision")


def _images_digest(images: torch.Tensor) -> str:
    return hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def stage1_fingerprint(run) -> str:
    """Identity of a prepared run's Stage I (see the module docstring). The head's sizes enter only where
    Stage I trains the head: a "drh" Stage I never touches it."""
    config, parts = run.config, run.components
    with_head = config.pretrain_objective != "drh"
    key: dict[str, Any] = {name: getattr(config, name) for name in _ALWAYS + (_HEAD if with_head else ())}
    key.update(without_added_later_defaults({name: getattr(config, name) for name in _ADDED_LATER}))
    # Stage I is stored at its own pixel scale (before the move to input_scale).
    key["scale"] = config.pretrain_input_scale if config.pretrain_input_scale is not None else config.input_scale
    key.update(format=STAGE1_FORMAT, version=__version__, device=run.device.type,
               images=_images_digest(run.data.images), shape=list(run.data.images.shape),
               encoder=[config.encoder, parts["encoder"].config])
    if config.pretrain_objective == "drh+sch":
        key.update(without_added_later_defaults({name: getattr(config, name) for name in _WITH_SCH}))
        key.update(augment=[config.augment, parts["augment"].config], miner=[config.miner, parts["miner"].config])
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


class StageOneCache:
    """Finished Stage I runs under one folder, one file per fingerprint."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)

    def path(self, fingerprint: str) -> Path:
        return self.folder / f"stage1-{fingerprint}.pt"

    def load(self, fingerprint: str) -> StageOne | None:
        path = self.path(fingerprint)
        stored = StageOne.load(path) if path.is_file() else None
        return stored if stored is not None and stored.fingerprint == fingerprint else None

    def save(self, fingerprint: str, stage1: StageOne) -> None:
        stage1.fingerprint = fingerprint
        stage1.save(self.path(fingerprint))
