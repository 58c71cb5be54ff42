"""What training hands back: the learned C and features, the loss history, timings and measurements."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The timings key holding what a reused (stored) Stage I cost when it ran.
STAGE1_STORED_S = "stage1_stored_s"


@dataclass(frozen=True)
class EpochReport:
    stage: str  # "pretrain" (Stage I) or "finetune" (Stage II)
    epoch: int  # 1-based
    total: int
    losses: dict[str, float]
    scores: dict[str, float] | None = None  # e.g. ACC/NMI of the current C, at evaluation epochs
    # Measurements of the step that are neither losses nor scores, e.g. sch_share (see Trainer._sch_share).
    diagnostics: dict[str, float] | None = None


@dataclass
class TrainingResult:
    coef: np.ndarray
    embedding: np.ndarray
    history: list[EpochReport] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    alpha: float = 0.0
    gamma: float = 0.0
    pretrain_epochs_run: int = 0
    # Mean squared norm of the encoder features at the end of Stage I and after Stage II: a
    # label-free sign of Stage II shrinking (collapsing) the features.
    feature_scale: dict[str, float] = field(default_factory=dict)
    dead_starts: int = 0  # initial weights redrawn because the encoder got no gradient (see Trainer._live_network)
    # What Stage II did, measured: "encoder_moved", ‖W − W_start‖ / ‖W_start‖ of the encoder's weights through
    # Stage II (absent after a resume, which does not know W_start); "beta", the β sch_gradient_ratio set.
    stage2_measures: dict[str, float] = field(default_factory=dict)

    @property
    def stage1_reused(self) -> bool:
        """Whether Stage I was restored from a stored run (its cost is then in the timings, checkpoints too)."""
        return STAGE1_STORED_S in self.timings
