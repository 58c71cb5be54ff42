"""Training on the CPU keeps the memory a step frees for the next step.

glibc's malloc serves every block larger than its mmap threshold (at most 32 MiB) with a fresh
mapping and unmaps it on free, so each step's large activations (a Yale B layer's are 50-100 MB)
come back as new pages that the kernel has to fault in and zero. Measured on Yale B's DSCSC step
(2 CPU cores, `benchmarks/profile_step.py --preset yaleb-2432`): 1747 ms a step, 1115 ms with
freed memory kept, for a peak resident size of 2.65 against 2.30 GB. Where the memory comes from
changes no number the step computes (tests/test_host_memory.py).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

# mallopt(3) parameters and glibc's defaults for them.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
GLIBC_DEFAULTS = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}
# While training: no block is mmapped, and free memory at the heap's top is returned only past 2 GiB
# (mallopt takes a C int).
WHILE_TRAINING = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1}
# A user who tunes malloc through its environment, or preloads another allocator, keeps their choice.
_USER_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES",
                  "LD_PRELOAD")


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _USER_SETTINGS):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: another allocator
        return None
    return libc.mallopt


@contextmanager
def freed_memory_kept(device: torch.device) -> Iterator[None]:
    """While the block trains on the CPU, malloc keeps freed memory for reuse; glibc's defaults come
    back after. On a GPU (whose allocator caches already), without glibc, or with the user's own
    malloc settings, nothing changes."""
    mallopt = _glibc_mallopt() if device.type == "cpu" else None
    if mallopt is None:
        yield
        return
    for parameter, value in WHILE_TRAINING.items():
        mallopt(parameter, value)
    try:
        yield
    finally:
        for parameter, value in GLIBC_DEFAULTS.items():
            mallopt(parameter, value)
