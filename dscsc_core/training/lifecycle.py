"""What runs beside Algorithm 1's loop, not inside it: the stage clock, checkpoints, stop requests and the
random state they carry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dscsc_core.training.checkpoint import Checkpoint, TrainingInterrupted
from dscsc_core.training.result import TrainingResult


def cuda_rng() -> list[torch.Tensor]:
    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []


def set_rng(cpu: torch.Tensor, cuda: list[torch.Tensor]) -> None:
    torch.set_rng_state(cpu)
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


class StageClock:
    """Seconds per stage. A checkpoint adds the seconds so far to its timings, so a resumed run's timings count
    every session, the interrupted one too."""

    def __init__(self) -> None:
        self._stage, self._started = "", 0.0

    def start(self, stage_key: str) -> None:
        self._stage, self._started = stage_key, time.perf_counter()

    def so_far(self, timings: dict[str, float]) -> dict[str, float]:
        """``timings`` with the running stage's seconds until now added."""
        counted = dict(timings)
        counted[self._stage] = counted.get(self._stage, 0.0) + time.perf_counter() - self._started
        return counted


@dataclass
class Checkpointing:
    """Where and when a run keeps checkpoints, and how it is asked to stop.

    ``save`` receives each checkpoint (None: the run has no folder to keep one in); ``should_stop`` is polled
    after every epoch (Ctrl-C, SIGTERM); ``fingerprint`` and ``settings`` identify the run a checkpoint belongs
    to, so that only that run resumes from it."""

    save: Callable[[Checkpoint], None] | None = None
    should_stop: Callable[[], bool] = lambda: False
    every: int = 0  # epochs between checkpoints (0: only when asked to stop)
    fingerprint: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    data: str = ""  # digest of the data the run trains on, so that a resume can say when the data changed

    @staticmethod
    def restore(network: torch.nn.Module, optimizer: torch.optim.Optimizer, resume: Checkpoint | None) -> int:
        """Load a checkpoint's weights, optimiser and random state; return the first epoch still to run."""
        if resume is None:
            return 1
        network.load_state_dict(resume.network)
        optimizer.load_state_dict(resume.optimizer)
        set_rng(resume.rng, resume.cuda_rng)
        return resume.epoch + 1

    def after_epoch(self, stage: str, epoch: int, network: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    result: TrainingResult, recon: list[float], timings: dict[str, float],
                    objective_state: dict[str, Any], pseudo_labels: list[int] | None = None) -> None:
        """Checkpoint every ``every`` epochs, and on a stop request (then stop)."""
        stop = self.should_stop()
        if self.save is None or not (stop or (self.every and epoch % self.every == 0)):
            if stop:
                raise TrainingInterrupted(f"interrupted in {stage} epoch {epoch}; nothing saved (no output folder)")
            return
        self.save(Checkpoint(
            stage, epoch, self.fingerprint, network.state_dict(), optimizer.state_dict(), torch.get_rng_state(),
            [report.__dict__ for report in result.history], list(recon), result.pretrain_epochs_run,
            timings, cuda_rng(), self.settings, dict(result.feature_scale), objective_state, self.data,
            pseudo_labels,
        ))
        if stop:
            raise TrainingInterrupted(f"interrupted in {stage} epoch {epoch}; checkpoint saved")
