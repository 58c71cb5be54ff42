"""A run owns its folder: one run at a time, no leftovers of killed writers, files of one run only,
and files as readable as any the user writes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, invoke

from dscsc_core.errors import FolderInUseError
from dscsc_core.run.outputs import CHECKPOINT, LOCK, RESULT, RunFolder, atomic_write_text
from dscsc_core.run.report import RunFiles

SUPPORT_PLUGIN = str(Path(__file__).parent / "support_plugin.py")
CLI = "import sys; from dscsc_cli.main import main; sys.argv = ['dscsc', *sys.argv[1:]]; main()"
TINY = ["--plugin", SUPPORT_PLUGIN, "--pretrain-epochs", "2", "--epochs", "2", "--no-figures", "--device", "cpu"]


# A dscsc process that imports the slow modules first and starts once the file named by its first
# argument exists, so that a test's processes start up side by side and act in a known order.
_ON_SIGNAL = """
import pathlib, sys, time
start = pathlib.Path(sys.argv.pop(1))
import torch, dscsc_core.run.pipeline, dscsc_cli.main
while not start.exists():
    time.sleep(0.02)
"""


def dscsc(*args: str, code: str = CLI, start: Path | None = None) -> subprocess.Popen:
    prefix, arguments = (_ON_SIGNAL, [str(start)]) if start is not None else ("", [])
    return subprocess.Popen([sys.executable, "-c", prefix + code, *arguments, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the process ended before {what}: {process.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name == LOCK or p.name.endswith(".tmp"))


def test_a_second_run_into_a_busy_folder_is_refused_and_the_folder_keeps_the_first_run(tmp_path):
    out, gate = tmp_path / "run", tmp_path / "go"
    first = dscsc("run", *TINY, "--dataset", "gated", "--gate", str(gate), "--count", "12", "--seed", "1",
                  "--out", str(out))
    second = dscsc("run", *TINY, "--dataset", "tiny", "--count", "12", "--seed", "2", "--out", str(out),
                   start=tmp_path / "start-second")
    # The first run holds the folder while its data "loads" (until the gate opens).
    wait_for(lambda: f'"pid": {first.pid}' in _read(out / LOCK), first, "the first run took its folder")
    (tmp_path / "start-second").touch()
    _, stderr = second.communicate(timeout=120)
    gate.touch()
    _, first_stderr = first.communicate(timeout=120)

    lines = [line for line in stderr.splitlines() if line.strip()]
    assert second.returncode == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("error: run folder") and f"in use by another dscsc process (pid {first.pid}" in lines[0]
    assert first.returncode == 0, first_stderr[-2000:]
    run = RunFiles.read(out)  # every file present and of one size: one run's
    assert run.summary["seed"] == 1 and run.summary["components"]["dataset"]["name"] == "gated"
    assert leftovers(out) == []


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# Stands in for a kill during a checkpoint write: the second checkpoint writes half its bytes, says
# so, then waits to be killed.
_HANG_IN_SECOND_CHECKPOINT = """
import io, sys, time, torch
signal_file = sys.argv.pop(1)
real_save, calls = torch.save, []
def save(obj, out, *args, **kwargs):
    calls.append(1)
    if len(calls) < 2:
        return real_save(obj, out, *args, **kwargs)
    data = io.BytesIO()
    real_save(obj, data)
    out.write(data.getvalue()[: len(data.getvalue()) // 2])
    out.flush()
    open(signal_file, "w").close()
    time.sleep(300)
torch.save = save
""" + CLI


def test_a_run_killed_while_writing_a_checkpoint_resumes_and_its_temporary_goes(tmp_path):
    out, writing = tmp_path / "run", tmp_path / "writing"
    process = dscsc(str(writing), "run", *TINY, "--dataset", "tiny", "--count", "12", "--checkpoint-every", "1",
                    "--out", str(out), code=_HANG_IN_SECOND_CHECKPOINT)
    resumed = dscsc("run", "--resume", str(out), "--plugin", SUPPORT_PLUGIN, "--no-figures",
                    start=tmp_path / "start-resume")
    wait_for(writing.exists, process, "the second checkpoint was half written")
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert (out / CHECKPOINT).is_file() and (out / LOCK).is_file()
    assert [p.name for p in out.glob(".checkpoint.pt.*.tmp")], "the killed writer left its temporary file"

    (tmp_path / "start-resume").touch()
    _, stderr = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, stderr[-2000:]
    # The killed run's lock is stale: taken over with a warning, not obeyed.
    assert f"warning: took over {out} from pid {process.pid}" in stderr
    assert leftovers(out) == []
    assert (out / RESULT).is_file() and not (out / CHECKPOINT).exists()


def test_run_files_get_the_umask_mode_and_a_new_run_leaves_nothing_of_the_previous_one(tmp_path):
    out = tmp_path / "run"
    previous = os.umask(0o027)  # neither mkstemp's private 0600 nor a fixed 0644 passes
    try:
        # Five samples: every figure but the t-SNE map, which takes long for what this test checks.
        labelled = invoke("run", "--dataset", "tiny", "--count", "5", "--k", "2", "--pretrain-epochs", "1",
                          "--epochs", "1", "--out", str(out))
    finally:
        os.umask(previous)
    assert labelled.exit_code == 0, labelled.output
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"result.json", "labels.npy", "truth.npy", "metrics.csv", "report.md", "affinity.png"} <= {
        p.name for p in files}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o640 for p in files}

    unlabelled = invoke("run", "--dataset", "tiny", "--count", "5", "--k", "2", "--labelled", "false",
                        "--n-clusters", "2",
                        "--pretrain-epochs", "1", "--epochs", "1", "--no-figures", "--out", str(out))
    assert unlabelled.exit_code == 0, unlabelled.output
    assert sorted(p.name for p in out.iterdir()) == ["affinity.npy", "coef.npy", "embedding.npy", "labels.npy",
                                                     "metrics.csv", "result.json"]
    assert json.loads((out / RESULT).read_text())["data"]["has_labels"] is False


def test_a_held_folder_refuses_a_second_holder_and_is_free_again_after_release(tmp_path):
    folder = tmp_path / "a" / "b"
    with RunFolder(folder):
        holder = json.loads((folder / LOCK).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(FolderInUseError, match=f"pid {os.getpid()} on "):
            RunFolder(folder).__enter__()
    assert not (tmp_path / "a").exists(), "folders the lock created, still empty, go with it"
    with RunFolder(folder):
        pass


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def test_a_lock_left_by_a_dead_process_is_taken_over_and_temporaries_are_removed(tmp_path):
    pid = dead_pid()
    (tmp_path / LOCK).write_text(json.dumps({"pid": pid, "host": "here", "started": "earlier"}))
    (tmp_path / ".labels.npy.0123.tmp").write_bytes(b"half")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / ".gallery.png.4567.tmp").write_bytes(b"half")
    (tmp_path / "mine.txt").write_text("not dscsc's")
    with RunFolder(tmp_path) as folder:
        assert folder.taken_over is not None and folder.taken_over.pid == pid
        assert sorted(p.name for p in folder.removed_temporaries) == [".gallery.png.4567.tmp", ".labels.npy.0123.tmp"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["figures", "mine.txt"]


def test_a_stale_lock_that_another_user_left_is_replaced(tmp_path, monkeypatch):
    pid = dead_pid()
    (tmp_path / LOCK).write_text(json.dumps({"pid": pid, "host": "here", "started": "earlier"}))
    theirs = (tmp_path / LOCK).stat().st_ino
    real_open = os.open

    def open_as_another_user(path, flags, *args):  # their 0644 lock file opens read-only for us
        if Path(path).name == LOCK and flags & os.O_RDWR and Path(path).exists() and os.stat(path).st_ino == theirs:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_as_another_user)
    with RunFolder(tmp_path) as folder:
        assert folder.taken_over is not None and folder.taken_over.pid == pid
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK).exists()


def test_report_on_a_busy_run_folder_is_refused(tmp_path):
    with RunFolder(tmp_path):
        assert_one_line_error(invoke("report", str(tmp_path)), "is in use by another dscsc process")


def test_atomic_writes_never_share_a_temporary_name(tmp_path, monkeypatch):
    names = []
    real_replace = os.replace

    def record(source, target):
        names.append(Path(source).name)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", record)
    for _ in range(20):
        atomic_write_text(tmp_path / "same.txt", "x")
    assert len(set(names)) == 20 and all(n.startswith(".same.txt.") and n.endswith(".tmp") for n in names)


def test_an_older_result_without_a_format_is_read(tmp_path):
    out = tmp_path / "run"
    assert invoke("run", "--dataset", "tiny", "--count", "12", "--pretrain-epochs", "1", "--epochs", "1",
                  "--no-figures", "--out", str(out)).exit_code == 0
    summary = json.loads((out / RESULT).read_text())
    assert summary.pop("format") == 1
    (out / RESULT).write_text(json.dumps(summary))
    result = invoke("compare", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["dataset"] == "tiny"
    assert np.load(out / "labels.npy").shape == (12,)
