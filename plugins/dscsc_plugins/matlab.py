"""MATLAB .mat reading shared by the benchmark and user-data sources, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from dscsc_core import DataError


def one_line(exc: BaseException) -> str:
    """Library errors can span lines; ours must not."""
    return " ".join(str(exc).split()) or type(exc).__name__


def read_mat(path: Path, dataset: str) -> dict[str, object]:
    """The file's variables (MATLAB's ``__header__`` entries dropped, sparse matrices made dense)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError
    from scipy.sparse import issparse

    try:
        content = loadmat(path)
    except (MatReadError, OSError, ValueError, TypeError, NotImplementedError, IndexError, EOFError) as exc:
        # scipy reports damaged files in several ways (a truncated header is an IndexError);
        # v7.3 files are HDF5, which loadmat refuses with NotImplementedError.
        raise DataError(
            f"dataset '{dataset}': cannot read {path} as a MATLAB v4-v7.2 file (save v7.3 data with -v7): "
            f"{one_line(exc)}"
        ) from None
    return {k: v.toarray() if issparse(v) else v for k, v in content.items() if not k.startswith("__")}
