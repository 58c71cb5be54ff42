"""What an executed run hands back: its C, labels and scores, per-stage timings and how it came by its Stage I."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dscsc_core.training.result import TrainingResult


@dataclass(frozen=True)
class LearnedC:
    """A run's C and the features it expresses, however it came: the trained network's, or a shallow solver's
    (on the pixels, or on a trained Stage I's features)."""

    coef: np.ndarray
    embedding: np.ndarray
    seconds: dict[str, float]  # "pretrain_s", "finetune_s" (a solver's time stands as Stage II's)
    training: TrainingResult | None = None  # the network's training, where one trained


@dataclass(frozen=True)
class StageOneUse:
    """How a run came by its Stage I: trained it, or reused one stored under ``fingerprint``."""

    reused: bool = False
    fingerprint: str | None = None  # None when no Stage I cache was used
    stored_seconds: float | None = None  # what the reused Stage I cost when it ran

    def to_dict(self) -> dict[str, Any]:
        return {"reused": self.reused, "fingerprint": self.fingerprint, "stored_seconds": self.stored_seconds}


@dataclass(frozen=True)
class RunTimings:
    """Seconds per stage of one run; a reused Stage I took no time here (``pretrain_s`` 0)."""

    load_s: float
    pretrain_s: float
    finetune_s: float
    cluster_s: float  # the run's own clusterer
    stage1: StageOneUse = StageOneUse()

    @property
    def total_s(self) -> float:
        return self.load_s + self.pretrain_s + self.finetune_s + self.cluster_s

    @property
    def train_s(self) -> float:
        """What this run costs from scratch, less clustering: a reused Stage I counts with what it cost."""
        return self.load_s + self.pretrain_s + self.finetune_s + (self.stage1.stored_seconds or 0.0)

    @property
    def stage1_s(self) -> float:
        """Stage I's cost, when it ran here or when it ran for the run it was reused from."""
        return self.stage1.stored_seconds or self.pretrain_s

    def to_dict(self) -> dict[str, float]:
        return {"load_s": self.load_s, "pretrain_s": self.pretrain_s, "finetune_s": self.finetune_s,
                "cluster_s": self.cluster_s, "total_s": self.total_s}


@dataclass(frozen=True)
class Scored:
    """One clusterer's answer on a run's C: labels, scores against the truth (when known), seconds."""

    labels: np.ndarray
    scores: dict[str, float] | None
    seconds: float


@dataclass
class RunResult:
    summary: dict[str, Any]
    labels: np.ndarray
    coef: np.ndarray
    affinity: np.ndarray
    embedding: np.ndarray
    timings: RunTimings
    history: list = field(default_factory=list)
    truth: np.ndarray | None = None  # the dataset's labels, when it has them (for figures and reports)
    # By clusterer name: the run's own clusterer and every extra one ``execute`` was given.
    clusterings: dict[str, Scored] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float] | None:
        return self.summary["metrics"]
