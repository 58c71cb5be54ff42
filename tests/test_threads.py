"""A run's ``threads`` setting: training (torch) and clustering (BLAS) on that many threads, restored after."""

import pytest
import torch
from conftest import assert_one_line_error, invoke
from threadpoolctl import threadpool_limits

from dscsc_core.errors import ParameterError
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.run.threads import blas_threads, cpu_threads

TINY = {"dataset": "synthetic", "device": "cpu", "pretrain_epochs": 2, "epochs": 2,
        "params": {"dataset": {"subspaces": 3, "per_subspace": 10, "size": 8}}}


@pytest.fixture
def two_threads_outside():
    """The process at two torch and two BLAS threads, as on this project's 2-core CI, whatever the machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    with threadpool_limits(limits=2):
        yield
    torch.set_num_threads(before)


def test_cpu_threads_sets_torch_and_blas_inside_and_restores_them_after(two_threads_outside):
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
        assert blas_threads() in (1, None)  # None: no BLAS library loaded at all
    assert torch.get_num_threads() == 2
    assert blas_threads() in (2, None)


def test_cpu_threads_none_leaves_the_process_as_it_is(two_threads_outside):
    with cpu_threads(None):
        assert torch.get_num_threads() == 2
        assert blas_threads() in (2, None)


def test_a_run_trains_and_clusters_on_its_threads_and_gives_them_back(two_threads_outside):
    registry = load_registry(strict=True)
    run = prepare(resolve_config(registry, TINY, {"threads": 1}), registry)
    seen = {"training": set(), "clustering": []}
    clusterer = run.components["clusterer"]
    cluster = clusterer.cluster

    def cluster_and_note(*args, **kwargs):
        seen["clustering"].append((torch.get_num_threads(), blas_threads()))
        return cluster(*args, **kwargs)

    clusterer.cluster = cluster_and_note
    result = execute(run, on_epoch=lambda *_: seen["training"].add(torch.get_num_threads()))
    assert seen["training"] == {1}
    assert seen["clustering"] and all(torch_n == 1 and blas_n in (1, None) for torch_n, blas_n in seen["clustering"])
    assert result.summary["machine"]["threads"] == 1
    assert result.summary["machine"]["blas_threads"] in (1, None)
    assert torch.get_num_threads() == 2


def test_the_thread_count_does_not_enter_a_runs_identity():
    from dscsc_core.run.identity import run_fingerprint, settings_fingerprint

    registry = load_registry(strict=True)
    plain, one = (prepare(resolve_config(registry, TINY, extra), registry) for extra in ({}, {"threads": 1}))
    assert run_fingerprint(plain) == run_fingerprint(one)
    assert settings_fingerprint(plain.config) == settings_fingerprint(one.config)


def test_zero_threads_is_refused():
    registry = load_registry(strict=True)
    with pytest.raises(ParameterError, match="threads"):
        resolve_config(registry, TINY, {"threads": 0})


def test_the_cli_refuses_zero_threads_in_one_line():
    assert_one_line_error(invoke("run", "--dataset", "synthetic", "--threads", "0"), "threads")
