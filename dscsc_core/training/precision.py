"""What a run's numbers mean on a GPU: IEEE fp32, and the same numbers from the same seed, as on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def reproducible_fp32(device: torch.device) -> Iterator[None]:
    """Full single precision and deterministic cuDNN kernels while the block runs on a CUDA ``device``.

    By default PyTorch lets cuDNN round a convolution's fp32 inputs to TF32 (a 10-bit mantissa) on
    Ampere and later GPUs, and lets it pick kernels whose sums run in a varying order, so an fp32
    run on a GPU would be a lower-precision run than on the CPU, and two runs of one seed could
    differ. The flags are process-wide; they are restored on exit. A bf16 run's autocast regions
    compute in bf16 either way. On the CPU nothing changes.
    """
    if device.type != "cuda":
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark
    matmul.allow_tf32 = cudnn.allow_tf32 = cudnn.benchmark = False
    cudnn.deterministic = True
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved
