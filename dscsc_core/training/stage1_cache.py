"""A finished Stage I, stored once per (Stage I settings, data, seed) and reused by every Stage II that shares it.

Table 4's rows, a k sweep, ``dscsc tune`` candidates and ``bench`` reruns often differ only after Stage I;
with a cache folder they pay for Stage I once. The key (``dscsc_core.run.identity.stage1_fingerprint``) holds
exactly what shapes Stage I: the images themselves (hashed), Stage I's pixel scale, and the settings whose
declared role puts them in Stage I (the encoder and its parameters, the optimiser and stopping settings, the
seed, the device type, and, when Stage I trains SCH on augmented views (``pretrain_objective = "drh+sch"``),
the head's sizes, the augmentation, the miner and SCH's weights too). DSC-Net's plain autoencoder Stage I
(``"drh"``) leaves the head as drawn and is trained on the random numbers of a default-head network whatever
the run's head, so DSCSC and its recipe share it where only their heads differ (the trainer keeps each run's
own head and random state). The CPU thread count is not in the key (it changes the rounding, not the method):
a Stage I trained on two threads and reused by a run on one gives what that Stage I followed by a one-thread
Stage II gives.
"""

from __future__ import annotations

from pathlib import Path

from dscsc_core.training.checkpoint import StageOne


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
