"""A run's fp32 on a GPU is IEEE fp32 with reproducible kernels; on the CPU nothing is touched.

The flags are plain process-wide settings, so this is checked without a GPU; tests/test_cuda.py checks
the same on a real one."""

from __future__ import annotations

import pytest
import torch

from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training import precision
from dscsc_core.training.precision import reproducible_fp32


def _flags():
    cudnn = torch.backends.cudnn
    return torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark


def _set_flags(matmul_tf32, cudnn_tf32, deterministic, benchmark):
    cudnn = torch.backends.cudnn
    torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = cudnn_tf32, deterministic, benchmark


@pytest.fixture
def saved_flags():
    """The process-wide flags as they were, put back by plain assignment after the test.

    Not monkeypatch: ``torch.backends.cuda.matmul`` serves its flags through ``__getattr__``/``__setattr__``,
    and newer pytest (9.2) restores a patched attribute in a way that object rejects (AttributeError at teardown,
    the flag left changed for the rest of the session)."""
    before = _flags()
    yield
    _set_flags(*before)


def test_a_cuda_block_runs_in_ieee_fp32_with_deterministic_kernels_and_restores_the_flags(saved_flags):
    _set_flags(True, True, False, True)
    with reproducible_fp32(torch.device("cuda")):
        assert _flags() == (False, False, True, False)
    assert _flags() == (True, True, False, True)


def test_the_saved_flags_fixture_puts_every_flag_back():
    # Runs after the tests above in file order: whatever they set, the defaults torch starts with are back.
    cudnn = torch.backends.cudnn
    assert (torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark) == (
        False, True, False, False)


def test_a_cpu_block_leaves_the_flags_alone(saved_flags):
    _set_flags(True, True, False, True)
    before = _flags()
    with reproducible_fp32(torch.device("cpu")):
        assert _flags() == before


def test_the_trainer_trains_inside_it_on_the_runs_device(monkeypatch):
    entered = []
    real = precision.reproducible_fp32

    def spy(device):
        entered.append(device)
        return real(device)

    monkeypatch.setattr("dscsc_core.training.trainer.reproducible_fp32", spy)
    registry = load_registry(strict=True)
    execute(prepare(resolve_config(registry, {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 1,
                                              "epochs": 1}), registry))
    assert entered == [torch.device("cpu")]
