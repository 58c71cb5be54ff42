"""Writing files so that a killed process never leaves half of one: a temporary name of its own, fsync, rename.

Every file dscsc writes (results, checkpoints, Stage I cache entries, records, figures) goes through
``atomic_write``; the temporaries a killed writer leaves are named ``.NAME.<random>.tmp``. What the operating
system refuses (permission, a full disk, a file-size limit, a name too long) becomes one ``FileWriteError``
naming the path and the cause. Files dscsc reads back later (checkpoints, Stage I cache entries) carry a
SHA-256 of their content (``save_checked``/``load_checked``), so a damaged one is never taken for whole.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pickle
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from dscsc_core.errors import DamagedFileError, FileWriteError

TEMPORARY_PATTERN = ".*.tmp"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | getattr(os, "O_BINARY", 0)


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` through ``write(binary file)``: temporary file, fsync, rename; never half a file."""
    path = Path(path)
    try:
        handle, temporary = _new_temporary(path)
    except OSError as error:
        raise FileWriteError(path, os_cause(error)) from None
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise FileWriteError(path, os_cause(error)) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def make_folder(path: Path | str) -> Path:
    """``mkdir -p``, with what the system refuses as one ``FileWriteError``."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileWriteError(path, os_cause(error)) from None
    return path


def os_cause(error: OSError) -> str:
    """The operating system's words for ``error``: ``No space left on device``, ``File too large``, ..."""
    if error.errno == errno.EFBIG:
        return "file too large (a file-size limit, e.g. ulimit -f, or the file system's)"
    return error.strerror or str(error) or type(error).__name__


def _new_temporary(path: Path) -> tuple[int, Path]:
    # os.open with 0666 lets the kernel apply the umask (and a folder's default ACL), so the result
    # gets the mode any file the user writes would; mkstemp would make it private (0600).
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, _CREATE_NEW, 0o666), temporary
        except FileExistsError:  # another writer drew the same name: draw again
            continue


def atomic_write_text(path: Path | str, text: str) -> Path:
    return atomic_write(path, lambda out: out.write(text.encode("utf-8")))


def remove_stale_temporaries(folder: Path | str, older_than_s: float = 0.0) -> list[Path]:
    """Remove the temporaries that killed writers left directly in ``folder``: every one in a folder no one else
    writes to now, else (a shared folder, ``older_than_s`` > 0) only those untouched for that long, which no
    live writer still holds (a write takes seconds)."""
    now = time.time()
    stale = []
    for path in Path(folder).glob(TEMPORARY_PATTERN):
        try:
            if older_than_s <= 0 or now - path.stat().st_mtime > older_than_s:
                path.unlink(missing_ok=True)
                stale.append(path)
        except OSError:  # gone meanwhile, or not ours to remove: it stays, nothing else depends on it
            continue
    return stale


_CHECKED_FORMAT = "dscsc-checked-1"


def save_checked(path: Path | str, value: Any) -> Path:
    """``torch.save(value)`` with a SHA-256 of the saved bytes beside them in one file, written atomically."""

    def write(out: IO[bytes]) -> None:  # serialised inside the write: a writer killed meanwhile leaves a temporary
        buffer = io.BytesIO()
        torch.save(value, buffer)
        payload = buffer.getvalue()
        envelope = {"format": _CHECKED_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}
        pickle.dump(envelope, out, protocol=pickle.HIGHEST_PROTOCOL)

    return atomic_write(path, write)


def load_checked(path: Path | str) -> Any:
    """What ``save_checked`` wrote at ``path``; ``DamagedFileError`` when the bytes no longer match their
    checksum or the file is not such a file. ``FileNotFoundError`` when there is none."""
    with open(path, "rb") as handle:
        try:
            envelope = pickle.load(handle)
        except Exception as exc:  # a damaged pickle raises many types
            raise DamagedFileError(f"{path} is damaged or not a dscsc file ({type(exc).__name__})") from None
    if not isinstance(envelope, dict) or envelope.get("format") != _CHECKED_FORMAT:
        raise DamagedFileError(f"{path} is not a dscsc file with a checksum (written by an older dscsc?)")
    payload = envelope.get("payload", b"")
    if hashlib.sha256(payload).hexdigest() != envelope.get("sha256"):
        raise DamagedFileError(f"{path} is damaged: its content does not match its checksum")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DamagedFileError(f"{path} is damaged or not a dscsc file ({type(exc).__name__})") from None
