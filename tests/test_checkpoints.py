"""Checkpoints and resume: an interrupted run ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke

from dscsc_core.errors import FileWriteError
from dscsc_core.run.outputs import CHECKPOINT
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.checkpoint import Checkpoint, CheckpointError, TrainingInterrupted

SETTINGS = {"dataset": "synthetic", "pretrain_epochs": 6, "epochs": 8, "seed": 3, "checkpoint_every": 2,
            "params": {"subspaces": 3, "per_subspace": 12}}


def stop_after(calls: int):
    """A should_stop that asks to stop at the ``calls``-th epoch end."""
    count = {"n": 0}

    def should_stop():
        count["n"] += 1
        return count["n"] == calls

    return should_stop


@pytest.mark.parametrize("stop_at", [3, 9])  # in Stage I (epoch 3) and in Stage II (epoch 3 of 8)
def test_resume_matches_an_uninterrupted_run(registry, tmp_path, stop_at):
    full = execute(prepare(resolve_config(registry, SETTINGS), registry))
    with pytest.raises(TrainingInterrupted, match="checkpoint saved in ") as stopped:
        execute(prepare(resolve_config(registry, SETTINGS), registry), checkpoint_dir=tmp_path,
                should_stop=stop_after(stop_at))
    assert stopped.value.checkpoint_dir == tmp_path and "dscsc run" not in str(stopped.value)
    state = Checkpoint.load(tmp_path / CHECKPOINT)
    assert (state.stage, state.epoch) == (("pretrain", 3) if stop_at == 3 else ("finetune", 3))
    # The interrupted session's seconds travel with the checkpoint and count in the resumed run's timings.
    running = f"{state.stage}_s"
    assert state.timings.get(running, 0.0) > 0.0
    resumed = execute(prepare(resolve_config(registry, state.settings), registry), checkpoint_dir=tmp_path,
                      resume=state)
    assert getattr(resumed.timings, running) > state.timings[running]
    assert np.array_equal(full.coef, resumed.coef)
    assert np.array_equal(full.labels, resumed.labels)
    assert full.metrics == resumed.metrics
    assert [r.losses for r in full.history] == [r.losses for r in resumed.history]


@pytest.mark.parametrize("stop_at", [3, 9])
def test_a_drh_stage1_beside_another_head_resumes_to_the_same_result(registry, tmp_path, stop_at):
    # Such a Stage I trains on the default head's random numbers and hands the run its own back afterwards.
    settings = {**SETTINGS, "pretrain_objective": "drh", "pretrain_batch_size": 12, "head_dim": 8}
    full = execute(prepare(resolve_config(registry, settings), registry))
    with pytest.raises(TrainingInterrupted):
        execute(prepare(resolve_config(registry, settings), registry), checkpoint_dir=tmp_path,
                should_stop=stop_after(stop_at))
    state = Checkpoint.load(tmp_path / CHECKPOINT)
    resumed = execute(prepare(resolve_config(registry, state.settings), registry), checkpoint_dir=tmp_path,
                      resume=state)
    assert np.array_equal(full.coef, resumed.coef)
    assert [r.losses for r in full.history] == [r.losses for r in resumed.history]


def test_resumed_run_counts_a_reused_stage_one_at_its_cost(registry, tmp_path):
    """A run that reused a stored Stage I and was stopped in Stage II still counts that Stage I once resumed."""
    cache, folder = tmp_path / "stage1", tmp_path / "run"
    first = execute(prepare(resolve_config(registry, SETTINGS), registry), stage1_cache=cache)
    with pytest.raises(TrainingInterrupted):
        execute(prepare(resolve_config(registry, SETTINGS), registry), stage1_cache=cache, checkpoint_dir=folder,
                should_stop=stop_after(3))
    state = Checkpoint.load(folder / CHECKPOINT)
    assert state.stage == "finetune"
    resumed = execute(prepare(resolve_config(registry, state.settings), registry), stage1_cache=cache,
                      checkpoint_dir=folder, resume=state)
    assert resumed.timings.stage1.reused and resumed.timings.pretrain_s == 0.0
    assert resumed.timings.stage1.stored_seconds == first.timings.pretrain_s > 0.0
    assert resumed.timings.stage1_s == first.timings.pretrain_s


def test_killed_process_resumes_to_the_same_result(tmp_path):
    args = ["--dataset", "synthetic", "--subspaces", "3", "--per-subspace", "15", "--pretrain-epochs", "40",
            "--epochs", "40", "--checkpoint-every", "2", "--seed", "1", "--no-figures", "--json"]
    code = "import sys; from dscsc_cli.main import main; sys.argv = ['dscsc', *sys.argv[1:]]; main()"
    full, interrupted = tmp_path / "full", tmp_path / "interrupted"
    # As many torch threads as this process's, so that the in-process run below computes the same floats.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen([sys.executable, "-c", code, "run", *args, "--out", str(interrupted)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (interrupted / CHECKPOINT).exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "continue with: dscsc run --resume" in stderr
    assert not (interrupted / "result.json").exists()
    log = tmp_path / "resumed.log"  # a file, not a pipe: nothing drains a pipe while the run below goes
    with log.open("w") as stderr_file:
        resumed = subprocess.Popen([sys.executable, "-c", code, "run", "--resume", str(interrupted),
                                    "--no-figures"], stdout=subprocess.DEVNULL, stderr=stderr_file, env=env)
        # The uninterrupted run, in this process beside the resumed one (two cores): the same result either way.
        whole = invoke("run", *args, "--out", str(full))
        assert resumed.wait(timeout=180) == 0, log.read_text()[-2000:]
    assert whole.exit_code == 0, whole.output[-2000:]
    assert np.array_equal(np.load(full / "coef.npy"), np.load(interrupted / "coef.npy"))
    assert np.array_equal(np.load(full / "labels.npy"), np.load(interrupted / "labels.npy"))
    first, second = (json.loads((d / "result.json").read_text())["metrics"] for d in (full, interrupted))
    assert first == second
    assert not (interrupted / CHECKPOINT).exists(), "a finished run drops its checkpoint"


def test_damaged_checkpoint_is_one_line(tmp_path):
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    assert_one_line_error(invoke("run", "--resume", str(tmp_path)), "is damaged or not a dscsc file")


def test_missing_checkpoint_is_one_line(tmp_path):
    assert_one_line_error(invoke("run", "--resume", str(tmp_path)), "no checkpoint at")


def test_checkpoint_of_another_configuration_is_refused(registry, tmp_path):
    with pytest.raises(TrainingInterrupted):
        execute(prepare(resolve_config(registry, SETTINGS), registry), checkpoint_dir=tmp_path,
                should_stop=stop_after(2))
    assert_one_line_error(invoke("run", "--resume", str(tmp_path), "--epochs", "50"),
                          "cannot resume: the checkpoint was made with other settings (epochs differ)")
    state = Checkpoint.load(tmp_path / CHECKPOINT)
    with pytest.raises(CheckpointError):
        execute(prepare(resolve_config(registry, {**SETTINGS, "seed": 4}), registry), resume=state)


def test_truncated_checkpoint_never_replaces_a_good_one(tmp_path, monkeypatch):
    """Checkpoints go through a temporary file and a rename: a crash mid-write keeps the old file."""
    good = Checkpoint("pretrain", 1, "abc", {}, {}, torch.get_rng_state())
    good.save(tmp_path / CHECKPOINT)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(FileWriteError, match="disk full"):
        Checkpoint("pretrain", 2, "abc", {}, {}, good.rng).save(tmp_path / CHECKPOINT)
    assert Checkpoint.load(tmp_path / CHECKPOINT).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]


def test_a_dense_c_too_large_for_memory_takes_the_scalable_path_with_a_warning(tmp_path, monkeypatch):
    import dscsc_core.run.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 2**20)  # 1 MiB; 200 samples need ~2.4 MiB
    out = tmp_path / "run"
    result = invoke("run", "--dataset", "synthetic", "--pretrain-epochs", "1", "--epochs", "1", "--k", "3",
                    "--no-figures", "--out", str(out))
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "200 samples need" in warned[0] and "takes the scalable path (coef_support 50, " \
        "stage2_batch_size 200, pretrain_batch_size 200, clusterer sparse-spectral" in warned[0]
    summary = json.loads((out / "result.json").read_text())
    assert summary["config"]["coef_support"] == 50 and summary["components"]["clusterer"]["name"] == "sparse-spectral"
    assert summary["config"]["pretrain_batch_size"] == 200  # Stage I's SCH, too, in batches
    assert (out / "coef.npz").is_file()


def test_too_large_for_memory_with_an_objective_that_needs_the_dense_c_is_refused(tmp_path, monkeypatch):
    import dscsc_core.run.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device: 2**20)
    out = tmp_path / "never"
    result = invoke("run", "--dataset", "synthetic", "--epochs", "1", "--objective", "dasc", "--out", str(out))
    assert_one_line_error(result, "200 samples need about", "GiB free", "use at most about")
    assert not out.exists()


def test_memory_estimate_grows_with_n_squared():
    from dscsc_core.run.memory import estimated_bytes

    assert estimated_bytes(2000) == 4 * estimated_bytes(1000)
    assert 1 * 2**30 < estimated_bytes(5000) < 4 * 2**30  # a 5000-sample run needs a few GiB, not MB or TB


def test_nan_loss_stops_with_term_and_epoch_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--dataset", "synthetic", "--pretrain-epochs", "2", "--epochs", "6", "--regularizer",
                    "nan-after", "--after", "3", "--checkpoint-every", "1", "--out", str(out))
    assert_one_line_error(result, "loss term sem became nan in finetune epoch 4", "last checkpoint")
    state = Checkpoint.load(out / CHECKPOINT)
    assert (state.stage, state.epoch) == ("finetune", 3)  # the last good epoch
    assert not (out / "result.json").exists()
