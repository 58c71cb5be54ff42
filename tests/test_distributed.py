"""Training in two processes through torch's DistributedDataParallel, on the CPU (gloo): the same C as one
process where sharding a batch is exact, an honest comparison where it is not (SCH), one-line errors for what
cannot work, and only the first process writing.

Each launch starts two Python processes (torch, the plugins) and trains the 30-sample run below: about 10 s on
two CPU cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
from conftest import assert_one_line_error, invoke
from scipy import sparse

import dscsc_cli
import dscsc_core
import dscsc_plugins
from dscsc_core.metrics import clustering_scores
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.distributed import Processes

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="this torch build has no gloo backend")

# Stage I in batches of 10 (three steps an epoch), Stage II in batches of 10 over the bank: 5 samples a share.
TINY = {"dataset": "synthetic", "pretrain_epochs": 2, "epochs": 4, "device": "cpu", "threads": 1,
        "pretrain_batch_size": 10, "stage2_batch_size": 10, "coef_support": 6, "clusterer": "sparse-spectral",
        "params": {"subspaces": 3, "per_subspace": 10, "miner.k": 2, "clusterer.k": 5}}
# Two processes against one where the shares' losses add up to the batch's: without SCH (β 0), with or without
# augmentation (every process augments the whole batch as one process does), here in batches of 15 (shares of 8
# and 7, so the gather pads one). The largest difference of a coefficient measured was 1.4e-9 in every such run,
# in batches of 10 or 15 (coefficients up to 7.6e-3; float32 sums taken in another order); the tolerance sits a
# little above.
C_ATOL = 1e-8
UNEVEN = {"pretrain_batch_size": 15, "stage2_batch_size": 15}


def _flags(settings: dict) -> list[str]:
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in settings.items() if key != "params"]
    return flags + [f"--{key}={value}" for key, value in settings["params"].items()]


def _environment() -> dict[str, str]:
    """This checkout's packages first on the path of every process started, one thread each."""
    roots = {str(Path(module.__file__).resolve().parents[1]) for module in (dscsc_core, dscsc_cli, dscsc_plugins)}
    path = os.pathsep.join([*sorted(roots), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args]


def _started(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _one_process(registry, layer: dict):
    return execute(prepare(resolve_config(registry, TINY, layer), registry))


def test_each_process_takes_a_contiguous_near_equal_share_of_a_batch():
    shares = [Processes(rank, 3).share(11) for rank in range(3)]
    assert shares == [slice(0, 4), slice(4, 8), slice(8, 11)]
    assert Processes().share(11) is None  # alone: the whole batch, untouched


@pytest.mark.parametrize("augment", ["none", "geometric"])
def test_two_processes_give_one_process_c_without_sch(registry, tmp_path, augment):
    exact = {**UNEVEN, "beta": 0.0, "augment": augment}
    out = tmp_path / "run"
    _started([sys.executable, "-m", "dscsc_cli", "run", *_flags({**TINY, **exact}), "--nproc=2", "--no-figures",
              f"--out={out}"], tmp_path)
    alone = _one_process(registry, exact)
    shared = sparse.load_npz(out / "coef.npz")
    assert shared.shape == alone.coef.shape and (shared != 0).nnz == alone.coef.nnz
    assert abs(shared - alone.coef).max() <= C_ATOL
    assert np.array_equal(np.load(out / "labels.npy"), alone.labels)
    assert json.loads((out / "result.json").read_text())["machine"]["processes"] == 2


def test_the_full_objective_trains_in_two_processes_started_by_plain_torchrun(registry, tmp_path):
    """SCH contrasts each sample with the negatives of its own share, so C moves away from one process's; on
    these 30 samples the clusters stay as good (the ACC of both measured 0.967; the bound allows 3 samples)."""
    out = tmp_path / "run"
    _started(_torchrun("-m", "dscsc_cli", "run", *_flags(TINY), "--no-figures", f"--out={out}"), tmp_path)
    alone = _one_process(registry, {})
    shared = sparse.load_npz(out / "coef.npz")
    assert shared.shape == (30, 30) and shared.nnz == alone.coef.nnz and np.isfinite(shared.data).all()
    acc = clustering_scores(np.load(out / "truth.npy"), np.load(out / "labels.npy"))["acc"]
    assert abs(acc - alone.summary["metrics"]["acc"]) <= 0.1


def test_only_the_first_process_writes_checkpoints_and_stage1_and_returns_a_result(tmp_path):
    settings = json.dumps({**TINY, "checkpoint_every": 1})
    _started(_torchrun(str(Path(__file__).with_name("distributed_worker.py")), settings, str(tmp_path)), tmp_path)
    assert json.loads((tmp_path / "returned0.json").read_text()) is True
    assert json.loads((tmp_path / "returned1.json").read_text()) is False
    assert (tmp_path / "rank0" / "run" / "checkpoint.pt").is_file()
    assert len(list((tmp_path / "rank0" / "stage1").glob("stage1-*.pt"))) == 1
    assert not (tmp_path / "rank1").exists()


@pytest.mark.parametrize("layer, flags, fragments", [
    ({"coef_support": 0, "stage2_batch_size": 0, "clusterer": "spectral", "pretrain_batch_size": 0,
      "params": {"subspaces": 3, "per_subspace": 10, "miner.k": 2}}, ["--nproc=2"],
     ["2 processes", "scalable path", "--coef-support", "--stage2-batch-size"]),
    ({}, ["--nproc=4", "--stage2-batch-size=3", "--pretrain-batch-size=15"],
     ["--stage2-batch-size 3", "mini-batches of 3 samples", "4 processes"]),
    ({}, ["--nproc=4", "--pretrain-batch-size=9"], ["--pretrain-batch-size 9", "Stage I mini-batch of 3 samples"]),
], ids=["dense-path", "stage2-batch", "stage1-batch"])
def test_what_several_processes_cannot_do_is_one_line_before_training(tmp_path, layer, flags, fragments):
    settings = {**TINY, **layer, "params": layer.get("params", TINY["params"])}
    result = invoke("run", *_flags(settings), *flags, f"--out={tmp_path / 'run'}")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()


def test_a_missing_backend_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(dist, "is_gloo_available", lambda: False)
    assert_one_line_error(invoke("run", *_flags(TINY), "--nproc=2"), "gloo backend", "--nproc")


def test_more_processes_than_gpus_is_one_line(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    assert_one_line_error(invoke("run", *_flags({**TINY, "device": "cuda"}), "--nproc=2"),
                          "2 processes on CUDA take a GPU each", "this machine has 1", "--nproc")
