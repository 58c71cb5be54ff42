"""How many CPU threads a run computes with: torch's pool (training) and the BLAS/OpenMP pools that NumPy,
SciPy and scikit-learn use (clustering).

Both change a seed's numbers. torch's thread count changes the summation order of training, and the BLAS
thread count changes the spectral embedding by rounding noise. The ``discretize`` step of DSC-Net's
clustering can turn that noise into another labelling: the same UMIST C reads 71.04 % with one BLAS thread
and 75.83 % with two (benchmarks/notebook.md, "Threads"). So a stored number is reproducible only with both pools at
its thread count, and ``threads`` sets both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_info, threadpool_limits


def blas_threads() -> int | None:
    """Threads of the BLAS pools loaded in this process (the largest, if several); None if none is loaded."""
    counts = [pool["num_threads"] for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else None


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch and every BLAS/OpenMP pool at ``count`` threads inside, as they were after; None leaves them."""
    if count is None:
        yield
        return
    torch_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=count):
            torch.set_num_threads(count)
            yield
    finally:
        torch.set_num_threads(torch_threads)


def use_cpu_threads(count: int) -> None:
    """``cpu_threads`` for the rest of the process: what a benchmark script's ``--threads`` sets."""
    threadpool_limits(limits=count)
    torch.set_num_threads(count)
