"""What a run writes into its folder: the result files, and the lock by which a run owns its folder.

Every file goes through ``dscsc_core.files.atomic_write``: a temporary file with a name no other writer uses,
in the target's folder, created with the mode any file the user writes gets (0666 less the umask), flushed
to disk and renamed over the target. A killed writer therefore leaves at worst a ``.NAME.*.tmp``
file, never a truncated one, and the next run or resume that owns the folder removes it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from dscsc_core.errors import ConfigError, FileWriteError, FolderInUseError
from dscsc_core.files import atomic_write, atomic_write_text, os_cause, remove_stale_temporaries
from dscsc_core.metrics import SCORES
from dscsc_core.training.losses import LOSS_TERMS

if TYPE_CHECKING:
    from dscsc_core.run.results import RunResult

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
# Version of result.json's layout; readers accept this and older layouts that carry the keys they use.
RESULT_FORMAT = 1
METRICS_CSV = "metrics.csv"
REPORT = "report.md"
FIGURES_DIR = "figures"
ARRAYS = ("labels", "coef", "affinity", "embedding", "truth")
LOCK = ".dscsc.lock"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)



class _ChunkWriter:
    """A file NumPy writes to in chunks through ``write``, so that what the system refuses (a file-size limit, a
    full disk) comes back as its own error, not as NumPy's short-write message."""

    def __init__(self, out):
        self.write = out.write


def _save_array(path: Path, array: np.ndarray | sparse.spmatrix) -> Path:
    """``NAME.npy`` for a dense array, ``NAME.npz`` (scipy.sparse) for a sparse one; the other form, a previous
    run's, is removed. Returns the path written."""
    dense, packed = path.with_suffix(".npy"), path.with_suffix(".npz")
    if sparse.issparse(array):
        dense.unlink(missing_ok=True)
        return atomic_write(packed, lambda out: sparse.save_npz(out, sparse.csr_matrix(array), compressed=False))
    packed.unlink(missing_ok=True)
    return atomic_write(dense, lambda out: np.save(_ChunkWriter(out), array))


def remove_temporaries(folder: Path | str) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder`` and its figures folder.

    Only for a folder this process owns (see ``RunFolder``): no one else writes there then.
    """
    folder = Path(folder)
    return [*remove_stale_temporaries(folder), *remove_stale_temporaries(folder / FIGURES_DIR)]


def check_output_dir(out_dir: Path | str) -> Path:
    """Fail before training when results could not be written to ``out_dir``."""
    out = Path(out_dir)
    _check_name_lengths(out)  # first: the file system refuses even to look up a name it cannot hold
    for link in (out, *out.parents):
        if link.is_symlink() and not link.exists():
            raise ConfigError(f"output folder {out} cannot be created: {link} is a symbolic link to "
                              f"{os.readlink(link)}, which does not exist")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a folder")
    existing = next(parent for parent in (out, *out.parents) if parent.exists())
    if not existing.is_dir():
        raise ConfigError(f"output folder {out} cannot be created: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {out} cannot be written (no write permission on {existing})")
    return out


def _check_name_lengths(path: Path) -> None:
    """A folder name longer than the file system takes fails only when created: check it first."""
    existing = Path(path.absolute().anchor)
    for part in path.absolute().parts[1:]:
        try:
            if not (existing / part).is_dir():
                break
        except OSError:
            break
        existing = existing / part
    try:
        longest = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):  # the system does not say: the creation itself will tell
        return
    for part in path.parts:
        if len(os.fsencode(part)) > longest:
            raise ConfigError(f"output folder {path} cannot be created: the name '{part[:40]}...' is "
                              f"{len(os.fsencode(part))} bytes, longer than the {longest} this file system allows")


def check_output_file(path: Path | str) -> Path:
    """Fail before any work when a file could not be written at ``path``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"output file {path} is a folder")
    check_output_dir(path.parent)
    return path


def metrics_csv(history) -> str:
    """One row per epoch: every loss term, and the scores where the epoch was evaluated."""
    core = [term.name for term in LOSS_TERMS]
    # A training objective's terms, in the order the run first reported them, before the total.
    extra = list(dict.fromkeys(name for report in history for name in report.losses if name not in core))
    diagnostics = list(dict.fromkeys(name for report in history for name in (report.diagnostics or {})))
    columns = ("stage", "epoch", *core[:-1], *extra, core[-1], *SCORES, *diagnostics)
    lines = [",".join(columns)]
    for report in history:
        values = {"stage": report.stage, "epoch": report.epoch, **report.losses, **(report.scores or {}),
                  **(report.diagnostics or {})}
        lines.append(",".join("" if values.get(c) is None else str(values[c]) for c in columns))
    return "\n".join(lines) + "\n"


def write_result(result: RunResult, out_dir: Path | str) -> Path:
    """Write the arrays, metrics.csv and result.json into ``out_dir``.

    result.json goes first out and last in: while the files change, the folder holds no run that
    ``dscsc report`` would read, and once it is back every file is this run's.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / RESULT).unlink(missing_ok=True)
    except OSError as error:
        raise FileWriteError(out, os_cause(error)) from None
    try:
        _write_files(result, out)
    except FileWriteError:
        clear_run_files(out)  # nothing half-written: a folder holds one whole run or none
        raise
    return out


def _write_files(result: RunResult, out: Path) -> None:
    arrays = {"labels": result.labels, "coef": result.coef.astype(np.float32),
              "affinity": result.affinity.astype(np.float32), "embedding": result.embedding.astype(np.float32),
              "truth": result.truth}
    for name, array in arrays.items():
        if array is None:
            for suffix in (".npy", ".npz"):  # a previous run's, which this one has no match for
                (out / f"{name}{suffix}").unlink(missing_ok=True)
        else:
            _save_array(out / f"{name}.npy", array)
    atomic_write_text(out / METRICS_CSV, metrics_csv(result.history))
    stored = {"format": RESULT_FORMAT, **result.summary}
    atomic_write_text(out / RESULT, json.dumps(stored, indent=2, default=_json_default) + "\n")
    (out / CHECKPOINT).unlink(missing_ok=True)  # the run is complete: the (large) checkpoint has served


def clear_run_files(folder: Path | str) -> None:
    """Remove a previous run's files from ``folder`` (result.json first), so that a new run that
    stops early, or writes fewer files, never sits beside another run's results."""
    from dscsc_core.run.figures import FIGURES

    folder = Path(folder)
    names = [RESULT, *(f"{name}{suffix}" for name in ARRAYS for suffix in (".npy", ".npz")), METRICS_CSV, REPORT,
             CHECKPOINT,
             *(f"{FIGURES_DIR}/{name}" for name in FIGURES)]
    for name in names:
        (folder / name).unlink(missing_ok=True)
    _remove_empty(folder / FIGURES_DIR)


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # absent, or holding files that are not ours
        pass


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run folder: written into the lock file so a refused run can name it."""

    pid: int
    host: str
    started: str
    command: str = ""

    @classmethod
    def me(cls) -> LockHolder:
        return cls(os.getpid(), socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S"), " ".join(sys.argv[:3]))

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["started"]), str(data.get("command", "")))
        except (ValueError, TypeError, KeyError):
            return None  # empty (its holder is still writing it) or not ours

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started}"


class RunFolder:
    """A run's exclusive hold on its folder while it writes there (``with RunFolder(path) as folder``).

    The lock file holds an advisory ``flock``, which the kernel drops when its process ends however
    it ends, so a lock left by a killed run is stale by construction: the next run takes it over
    (``taken_over`` names the dead holder) instead of obeying it. The file's content names the holder
    for the message a refused run prints. Folders this lock had to create are removed again on release
    when nothing was written into them; with ``create=False`` a missing folder is an error instead.
    """

    def __init__(self, path: Path | str, create: bool = True):
        self.path = Path(path)
        self.create = create
        self.taken_over: LockHolder | None = None
        self.removed_temporaries: list[Path] = []
        self._handle: int | None = None
        self._created: list[Path] = []

    def __enter__(self) -> RunFolder:
        check_output_dir(self.path)
        if not self.create and not self.path.is_dir():
            raise ConfigError(f"run folder {self.path} does not exist")
        try:
            self._created = _make_folders(self.path)
        except OSError as error:
            raise FileWriteError(self.path, os_cause(error)) from None
        try:
            self._acquire()
        except OSError as error:
            _remove_created(self._created)
            raise FileWriteError(self.path / LOCK, os_cause(error)) from None
        except BaseException:
            _remove_created(self._created)
            raise
        self.removed_temporaries = remove_temporaries(self.path)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _acquire(self) -> None:
        import fcntl

        lock = self.path / LOCK
        while True:
            handle, writable = _open_lock(lock)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = LockHolder.parse(_read_all(handle))
                os.close(handle)
                raise FolderInUseError(self.path, holder.describe() if holder else None) from None
            if not _is_current(handle, lock):
                os.close(handle)  # its holder released it between our open and our flock: open the new one
                continue
            previous = LockHolder.parse(_read_all(handle))
            if previous is not None and previous.pid != os.getpid():
                self.taken_over = previous
            if writable:
                break
            lock.unlink()  # a stale lock of another user, which we may not rewrite: make our own
            os.close(handle)
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps(asdict(LockHolder.me())).encode(), 0)
        self._handle = handle

    def release(self) -> None:
        """Give the folder up (unlink before unlocking, so no one locks a file that is going away)."""
        if self._handle is None:
            return
        (self.path / LOCK).unlink(missing_ok=True)
        os.close(self._handle)
        self._handle = None
        _remove_created(self._created)


def _make_folders(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; return the ones created, deepest first."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_created(folders: Iterable[Path]) -> None:
    for folder in folders:  # deepest first: stops mattering at the first one that holds something
        _remove_empty(folder)


def _open_lock(lock: Path) -> tuple[int, bool]:
    """The lock file and whether we may write it (a lock another user left in a shared folder opens
    read-only: enough to tell whether its holder still runs)."""
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o666), True
    except PermissionError:
        return os.open(lock, os.O_RDONLY | _CLOEXEC), False


def _read_all(handle: int) -> str:
    return os.pread(handle, 4096, 0).decode("utf-8", "replace")


def _is_current(handle: int, path: Path) -> bool:
    """Whether the open lock file is still the one at ``path`` (a releasing holder unlinks it)."""
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path))
    except FileNotFoundError:
        return False
