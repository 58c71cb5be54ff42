"""A run's fp32 on a GPU is IEEE fp32 with reproducible kernels; on the CPU nothing is touched.

The flags are plain process-wide settings, so this is checked without a GPU; tests/test_cuda.py checks
the same on a real one."""

from __future__ import annotations

import torch

from dscsc_core import precision
from dscsc_core.precision import reproducible_fp32
from dscsc_core.registry import load_registry
from dscsc_core.runner import execute, prepare, resolve_config


def _flags():
    cudnn = torch.backends.cudnn
    return torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark


def test_a_cuda_block_runs_in_ieee_fp32_with_deterministic_kernels_and_restores_the_flags(monkeypatch):
    cudnn = torch.backends.cudnn
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    for name, value in (("allow_tf32", True), ("deterministic", False), ("benchmark", True)):
        monkeypatch.setattr(cudnn, name, value)
    with reproducible_fp32(torch.device("cuda")):
        assert _flags() == (False, False, True, False)
    assert _flags() == (True, True, False, True)


def test_a_cpu_block_leaves_the_flags_alone(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    before = _flags()
    with reproducible_fp32(torch.device("cpu")):
        assert _flags() == before


def test_the_trainer_trains_inside_it_on_the_runs_device(monkeypatch):
    entered = []
    real = precision.reproducible_fp32

    def spy(device):
        entered.append(device)
        return real(device)

    monkeypatch.setattr("dscsc_core.trainer.reproducible_fp32", spy)
    registry = load_registry(strict=True)
    execute(prepare(resolve_config(registry, {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 1,
                                              "epochs": 1}), registry))
    assert entered == [torch.device("cpu")]
