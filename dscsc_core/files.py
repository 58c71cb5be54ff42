"""Writing files so that a killed process never leaves half of one: a temporary name of its own, fsync, rename.

Every file dscsc writes (results, checkpoints, Stage I cache entries, records, figures) goes through
``atomic_write``; the temporaries a killed writer leaves are named ``.NAME.<random>.tmp``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TEMPORARY_PATTERN = ".*.tmp"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | getattr(os, "O_BINARY", 0)


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` through ``write(binary file)``: temporary file, fsync, rename; never half a file."""
    path = Path(path)
    handle, temporary = _new_temporary(path)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


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


def remove_stale_temporaries(folder: Path | str) -> list[Path]:
    """Remove the temporaries that killed writers left directly in ``folder``; only for a folder no one else
    is writing to now."""
    stale = list(Path(folder).glob(TEMPORARY_PATTERN))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
