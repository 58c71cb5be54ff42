"""Where dataset files live: the ``data_root`` setting > ``DSCSC_DATA`` > the documented default.

Dataset plugins ask for a file by its path relative to the data root; when it is missing the
error names the file, where it looked, why it looked there and how to point dscsc elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dscsc_core.errors import DataError

DATA_ENV = "DSCSC_DATA"
SETTING = "data_root"


def default_data_root() -> Path:
    """``$XDG_DATA_HOME/dscsc`` (usually ``~/.local/share/dscsc``)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "dscsc"


@dataclass(frozen=True)
class DataRoot:
    path: Path
    origin: str  # why this folder: SETTING, DATA_ENV or "default"

    @classmethod
    def resolve(cls, explicit: str | Path | None = None) -> DataRoot:
        if explicit:
            return cls(Path(explicit).expanduser(), SETTING)
        if os.environ.get(DATA_ENV):
            return cls(Path(os.environ[DATA_ENV]).expanduser(), DATA_ENV)
        return cls(default_data_root(), "default")

    def file(self, relative: str, dataset: str) -> Path:
        """The existing file ``relative`` under this root, or a one-line DataError saying how to fix it."""
        path = self.path / relative
        if path.is_file():
            return path
        origin = "{origin}" if self.origin == SETTING else self.origin
        raise DataError(
            f"dataset '{dataset}' needs {relative}, not found in {self.path} (data root from {origin}); "
            f"put the file there or point dscsc at your copy with {{setting}} DIR or {DATA_ENV}=DIR",
            origin=SETTING, setting=SETTING,
        )

    def user_file(self, given: str, owner: str) -> Path:
        """A user-named file: absolute, relative to the working folder, or relative to the data root."""
        path = Path(given).expanduser()
        candidates = [path] if path.is_absolute() else [path, self.path / path]
        for candidate in candidates:
            if candidate.exists():
                return candidate
        where = " or ".join(str(c) for c in candidates)
        raise DataError(f"{owner}: {given} not found (looked for {where})")
