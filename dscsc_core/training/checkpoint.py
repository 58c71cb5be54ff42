"""Training checkpoints: everything needed to continue a run bit for bit, written atomically.

A checkpoint holds the network (and C), the optimiser state, the random-number state, the loss
history and the configuration fingerprint; resuming restores all of it, so an interrupted run ends
exactly where an uninterrupted one with the same seed would.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dscsc_core.errors import DamagedFileError, DscscError
from dscsc_core.files import load_checked, save_checked

FORMAT = 1


class CheckpointError(DscscError):
    """A checkpoint that is missing, damaged, or made by a different run configuration."""


class TrainingInterrupted(DscscError):
    """Training stopped on request (Ctrl-C, SIGTERM); ``checkpoint_dir`` holds its checkpoint, if one was saved."""

    exit_code = 130

    def __init__(self, message: str, checkpoint_dir: Path | str | None = None):
        super().__init__(message)
        self.checkpoint_dir = checkpoint_dir


@contextlib.contextmanager
def stop_requests():
    """An event that Ctrl-C and SIGTERM set, so training stops after the current epoch with a checkpoint.

    The previous handlers come back on exit; a caller passes ``event.is_set`` as ``should_stop``.
    """
    requested = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: requested.set())
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Checkpoint:
    stage: str  # "pretrain" or "finetune": the stage whose ``epoch`` was the last one completed
    epoch: int
    fingerprint: str
    network: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: torch.Tensor
    history: list[dict[str, Any]] = field(default_factory=list)
    recon_history: list[float] = field(default_factory=list)
    pretrain_epochs_run: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    cuda_rng: list[torch.Tensor] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # the resolved run configuration, to resume with
    feature_scale: dict[str, float] = field(default_factory=dict)
    objective: dict[str, Any] = field(default_factory=dict)  # a training objective's own state (Stage II)
    data: str = ""  # digest of the images and labels it trained on (dscsc_core.run.identity.data_digest)
    # The objective's pseudo-labels of the last epoch, so a run resumed between two re-clusterings keeps them.
    pseudo_labels: list[int] | None = None

    def save(self, path: Path | str) -> None:
        """Temporary file, fsync, rename, and a checksum: a killed process never leaves a truncated checkpoint,
        and a damaged one is never resumed from."""
        save_checked(path, {"format": FORMAT, **self.__dict__})

    @classmethod
    def load(cls, path: Path | str) -> Checkpoint:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}; a run writes one every {{setting}} epochs and when "
                                  "it is stopped", setting="checkpoint_every")
        try:
            data = load_checked(path)
            data.pop("format")
            return cls(**data)
        except DamagedFileError as damaged:
            raise CheckpointError(f"checkpoint {damaged}; start a new run") from None
        except (OSError, TypeError, AttributeError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); start a new run") \
                from None


@dataclass
class StageOne:
    """A finished Stage I: the network after pretraining (at Stage I's pixel scale), the random state it
    ended with and its history.

    Stored once per Stage I settings and seed (see ``runner.StageOneCache``) and restored in place
    of running Stage I, so ablations that share it (Table 4 rows, a k sweep, tuning) pay it once
    and still end exactly as a run that trained Stage I itself.
    """

    fingerprint: str
    network: dict[str, torch.Tensor]
    rng: torch.Tensor
    cuda_rng: list[torch.Tensor] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    pretrain_epochs_run: int = 0
    seconds: float = 0.0  # what Stage I cost when it ran
    dead_starts: int = 0  # initial weights redrawn before it (see Trainer._live_network)

    def save(self, path: Path | str) -> None:
        save_checked(path, {"format": FORMAT, **self.__dict__})

    @classmethod
    def load(cls, path: Path | str) -> StageOne:
        """The stored Stage I at ``path``; ``DamagedFileError`` when it is damaged or not a Stage I."""
        data = load_checked(path)
        try:
            data.pop("format")
            return cls(**data)
        except (TypeError, AttributeError, KeyError) as exc:
            raise DamagedFileError(f"{path} is not a stored Stage I ({type(exc).__name__})") from None
