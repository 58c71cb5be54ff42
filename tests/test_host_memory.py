"""Training on the CPU keeps freed memory for the next step (dscsc_core.training.host_memory): glibc is told so
for the run's duration and reset after, nothing changes on a GPU or under the user's own malloc
settings, and no computed number moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training import host_memory
from dscsc_core.training.host_memory import GLIBC_DEFAULTS, WHILE_TRAINING, freed_memory_kept


@pytest.fixture
def calls(monkeypatch):
    made = []
    monkeypatch.setattr(host_memory, "_glibc_mallopt", lambda: lambda parameter, value: made.append((parameter, value)))
    return made


def test_a_cpu_block_keeps_freed_memory_and_glibcs_defaults_come_back(calls):
    with freed_memory_kept(torch.device("cpu")):
        assert calls == list(WHILE_TRAINING.items())
        assert WHILE_TRAINING[host_memory.M_MMAP_MAX] == 0
    assert calls[len(WHILE_TRAINING):] == list(GLIBC_DEFAULTS.items())


def test_the_defaults_come_back_when_the_block_fails(calls):
    with pytest.raises(RuntimeError), freed_memory_kept(torch.device("cpu")):
        raise RuntimeError("a failing step")
    assert calls[-len(GLIBC_DEFAULTS):] == list(GLIBC_DEFAULTS.items())


def test_nothing_changes_on_a_gpu(calls):
    with freed_memory_kept(torch.device("cuda")):
        pass
    assert calls == []


@pytest.mark.parametrize("variable", ["MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD"])
def test_the_users_own_malloc_settings_are_left_alone(monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    assert host_memory._glibc_mallopt() is None


def test_glibc_is_found_here():
    # CI and the project's machines run Linux with glibc: the speed-up is live there, not only in theory.
    assert host_memory._glibc_mallopt() is not None


def _digits_run(registry):
    # Digits' 1797 x 1797 C (13 MB) and conv1 activations are past glibc's mmap threshold.
    settings = {"dataset": "digits", "device": "cpu", "pretrain_epochs": 3, "epochs": 3, "seed": 0}
    return execute(prepare(resolve_config(registry, settings), registry))


def test_the_trainer_keeps_freed_memory_while_it_trains_and_no_number_moves(registry, monkeypatch):
    real = host_memory._glibc_mallopt()
    made = []

    def recording(parameter, value):
        made.append((parameter, value))
        return real(parameter, value)

    monkeypatch.setattr(host_memory, "_glibc_mallopt", lambda: recording)
    kept = _digits_run(registry)
    assert made == list(WHILE_TRAINING.items()) + list(GLIBC_DEFAULTS.items())
    monkeypatch.setattr(host_memory, "_glibc_mallopt", lambda: None)
    plain = _digits_run(registry)
    np.testing.assert_array_equal(kept.coef, plain.coef)
    assert [r.losses for r in kept.history] == [r.losses for r in plain.history]
