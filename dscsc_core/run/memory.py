"""Refuse, before allocating it, a run whose N x N matrices would not fit the device.

C is dense: the parameter, its gradient and Adam's two moments are 4 N x N float32 matrices; the
contrastive loss, the miner and the clusterers add several more N x N temporaries (float64 in the
clusterers). The estimate counts them with a margin; it is a guard against hopeless runs (a
10^5-sample dataset needs ~600 GB), not an exact budget.
"""

from __future__ import annotations

import os

import torch

from dscsc_core.errors import DscscError

# Bytes per N^2: C + grad + 2 Adam moments (16), SCH/miner temporaries (~8 float32 N x N = 32),
# clustering affinities in float64 (~2 copies = 16).
BYTES_PER_PAIR = 64


class InsufficientMemoryError(DscscError):
    """The N x N coefficient matrix and its companions would not fit the device."""


def estimated_bytes(n_samples: int) -> int:
    return BYTES_PER_PAIR * n_samples * n_samples


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (None when it cannot be told)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def dense_fits(n_samples: int, device: torch.device) -> bool:
    """Whether the dense C and its companions fit the device (True when its free memory cannot be told)."""
    free = available_bytes(device)
    return free is None or estimated_bytes(n_samples) <= free


def check_memory(n_samples: int, device: torch.device) -> None:
    needed, free = estimated_bytes(n_samples), available_bytes(device)
    if free is not None and needed > free:
        fits = int((free / BYTES_PER_PAIR) ** 0.5)
        raise InsufficientMemoryError(
            f"{n_samples} samples need about {needed / 2**30:.1f} GiB for the dense {n_samples} x {n_samples} "
            f"coefficient matrix, its optimiser state and loss terms, but {device} has {free / 2**30:.1f} GiB free; "
            f"use at most about {fits} samples (e.g. a subset), or a device with more memory"
        )
