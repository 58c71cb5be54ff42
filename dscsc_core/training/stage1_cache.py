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

import os
import warnings
from pathlib import Path

from dscsc_core.errors import ConfigError, DamagedFileError, DscscWarning, FileWriteError
from dscsc_core.files import os_cause, remove_stale_temporaries
from dscsc_core.training.checkpoint import StageOne

# A temporary left in a cache folder is stale once untouched this long: writing an entry takes seconds, and
# other runs may be writing to the same folder now.
STALE_TEMPORARY_S = 600.0


class StageOneCache:
    """Finished Stage I runs under one folder, one file per fingerprint, each with a checksum.

    Opening the cache checks the folder before any training: a path that is a file is an error; a folder that
    cannot be written is a warning, and the run goes on without storing (stored entries are still read). A
    damaged entry is never reused: Stage I trains again, with a warning, and the new entry replaces it.
    Temporaries killed writers left behind are removed.
    """

    def __init__(self, folder: Path | str, store: bool = True):
        """``store`` False: only read the cache (the processes of a run but the first, which stores)."""
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"the Stage I cache {self.folder} is a file, not a folder; name a folder for "
                              "{setting}", setting="stage1_cache")
        self.writable = store and self._check_writable()
        if self.writable and self.folder.is_dir():
            remove_stale_temporaries(self.folder, older_than_s=STALE_TEMPORARY_S)

    def _check_writable(self) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return self._cannot_store(os_cause(error))
        if not os.access(self.folder, os.W_OK | os.X_OK):
            return self._cannot_store("no write permission")
        return True

    def _cannot_store(self, cause: str) -> bool:
        warnings.warn(DscscWarning(f"the Stage I cache {self.folder} cannot be written ({cause}); this run trains "
                                   "without storing its Stage I"), stacklevel=3)
        return False

    def path(self, fingerprint: str) -> Path:
        return self.folder / f"stage1-{fingerprint}.pt"

    def load(self, fingerprint: str) -> StageOne | None:
        path = self.path(fingerprint)
        if not path.is_file():
            return None
        try:
            stored = StageOne.load(path)
        except (DamagedFileError, OSError) as damaged:
            warnings.warn(DscscWarning(f"Stage I cache entry {damaged}; training Stage I again"), stacklevel=2)
            return None
        return stored if stored.fingerprint == fingerprint else None

    def save(self, fingerprint: str, stage1: StageOne) -> None:
        """Store a finished Stage I; a cache that cannot take it (full disk, file-size limit) is a warning."""
        if not self.writable:
            return
        stage1.fingerprint = fingerprint
        try:
            stage1.save(self.path(fingerprint))
        except FileWriteError as error:
            warnings.warn(DscscWarning(f"the Stage I cache could not store this run's Stage I ({error}); the run "
                                       "goes on"), stacklevel=2)
