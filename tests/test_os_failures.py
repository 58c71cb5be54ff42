"""Faults a real user hits, class by class: data rewritten between runs, damaged or unwritable caches, a
file-size limit while writing, an unusable --out. No reuse survives a change of the data's content, a damaged
cache entry is never reused, a cache that cannot be written is a warning, and every other failure is one
`error:` line naming the path and the cause, exit 2, no traceback and nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, invoke

from dscsc_core.errors import FileWriteError
from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.outputs import CHECKPOINT, RESULT
from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.checkpoint import StageOne, TrainingInterrupted

FAST = ["--pretrain-epochs", "2", "--epochs", "2", "--no-figures", "--device", "cpu", "--threads", "1"]
CLI = "import sys; from dscsc_cli.main import main; sys.argv = ['dscsc', *sys.argv[1:]]; main()"


def write_npz(path: Path, seed: int) -> Path:
    """Twelve 8x8 images of two classes; another ``seed`` gives other pixels of the same shape."""
    rng = np.random.default_rng(seed)
    np.savez(path, images=rng.random((12, 8, 8)).astype(np.float32), labels=np.arange(12) % 2)
    return path


def npz_run(path: Path, *more: str) -> list[str]:
    return ["run", "--dataset", "npz", "--path", str(path), "--k", "2", *FAST, *more]


def warnings_in(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


# --------------------------------------------------------------------------- data rewritten between runs
def _interrupted(data: Path, out: Path) -> None:
    """A run of ``data`` stopped (as by Ctrl-C) in Stage II, its checkpoint in ``out``."""
    registry = load_registry(strict=True)
    layer = {"dataset": "npz", "params": {"dataset": {"path": str(data)}, "k": 2}, "pretrain_epochs": 2,
             "epochs": 50, "device": "cpu", "threads": 1}
    calls = []
    with pytest.raises(TrainingInterrupted):
        execute(prepare(resolve_config(registry, layer), registry), checkpoint_dir=out,
                should_stop=lambda: calls.append(1) or len(calls) == 3)
    assert (out / CHECKPOINT).is_file()


def resume_on_rewritten_pixels(tmp: Path) -> None:
    data = write_npz(tmp / "data.npz", 0)
    out = tmp / "run"
    _interrupted(data, out)
    write_npz(data, 1)  # same shape, other pixels
    assert_one_line_error(invoke("run", "--resume", str(out), "--no-figures"), "cannot resume: the data changed")
    assert (out / CHECKPOINT).is_file() and not (out / RESULT).exists()


def resume_on_rewritten_labels(tmp: Path) -> None:
    data = write_npz(tmp / "data.npz", 0)
    out = tmp / "run"
    _interrupted(data, out)
    with np.load(data) as arrays:
        images = arrays["images"]
    np.savez(data, images=images, labels=(np.arange(12) // 6))  # same pixels, other labels
    assert_one_line_error(invoke("run", "--resume", str(out), "--no-figures"), "cannot resume: the data changed")


def ablate_again_on_rewritten_data(tmp: Path) -> None:
    data = write_npz(tmp / "data.npz", 0)
    args = ["ablate", "--dataset", "npz", "--path", str(data), *FAST[:4], "--grid", "k=2", "--seeds", "1",
            "--out", str(tmp / "abl")]
    first = invoke(*args)
    assert first.exit_code == 0 and "ran " in first.stderr, first.output
    before = _record(tmp / "abl")
    assert "reused " in invoke(*args).stderr  # the same data: the stored run is this run
    write_npz(data, 1)
    again = invoke(*args)
    assert again.exit_code == 0 and "ran " in again.stderr and "reused " not in again.stderr, again.output
    assert invoke(*args[:-1], str(tmp / "fresh")).exit_code == 0
    now, expected = _record(tmp / "abl"), _record(tmp / "fresh")
    assert now["data"] == expected["data"] != before["data"]
    assert now["labels"] == expected["labels"] and now["scores"]["dsc-post"] == {
        **expected["scores"]["dsc-post"], "seconds": now["scores"]["dsc-post"]["seconds"]}


def _record(folder: Path) -> dict:
    (path,) = folder.rglob("seed0-*.json")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- the Stage I cache
def _entry(cache: Path) -> Path:
    entries = sorted(cache.glob("stage1-*.pt"))
    assert len(entries) == 1, entries
    return entries[0]


def _reused(result) -> bool:
    return json.loads(result.stdout)["stage1"]["reused"]


def damaged_entry_trains_again(tmp: Path) -> None:
    data, cache = write_npz(tmp / "data.npz", 0), tmp / "cache"
    first = invoke(*npz_run(data, "--stage1-cache", str(cache), "--json"))
    entry = _entry(cache)
    raw = bytearray(entry.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # zero bytes inside the stored tensors
    entry.write_bytes(bytes(raw))
    second = invoke(*npz_run(data, "--stage1-cache", str(cache), "--json"))
    assert second.exit_code == 0, second.output
    assert not _reused(second) and any("damaged" in line for line in warnings_in(second)), second.stderr
    assert json.loads(second.stdout)["metrics"] == json.loads(first.stdout)["metrics"]
    assert _reused(invoke(*npz_run(data, "--stage1-cache", str(cache), "--json")))  # replaced by a whole one


def truncated_entry_trains_again(tmp: Path) -> None:
    data, cache = write_npz(tmp / "data.npz", 0), tmp / "cache"
    invoke(*npz_run(data, "--stage1-cache", str(cache), "--json"))
    entry = _entry(cache)
    entry.write_bytes(entry.read_bytes()[:1000])
    second = invoke(*npz_run(data, "--stage1-cache", str(cache), "--json"))
    assert second.exit_code == 0 and not _reused(second) and warnings_in(second), second.output


def stale_temporaries_go(tmp: Path) -> None:
    data, cache = write_npz(tmp / "data.npz", 0), tmp / "cache"
    cache.mkdir()
    stale, fresh = cache / ".stage1-x.pt.0123456789ab.tmp", cache / ".stage1-y.pt.ba9876543210.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    long_ago = time.time() - 3600
    os.utime(stale, (long_ago, long_ago))
    assert invoke(*npz_run(data, "--stage1-cache", str(cache))).exit_code == 0
    assert not stale.exists() and fresh.exists()  # a recent one may belong to a writer still at work


# --------------------------------------------------------------------------- a cache that cannot be written
def cache_path_is_a_file(tmp: Path) -> None:
    data, cache = write_npz(tmp / "data.npz", 0), tmp / "cache"
    cache.write_text("not a folder")
    assert_one_line_error(invoke(*npz_run(data, "--stage1-cache", str(cache), "--out", str(tmp / "run"))),
                          f"the Stage I cache {cache} is a file, not a folder", "--stage1-cache")
    assert not (tmp / "run").exists()


def cache_folder_read_only(tmp: Path, monkeypatch) -> None:
    data, cache = write_npz(tmp / "data.npz", 0), tmp / "cache"
    cache.mkdir()
    real = os.access
    # Root may write anywhere, so the refusal a user without write permission gets is simulated.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (Path(path) != cache or not mode & os.W_OK)
                        and real(path, mode, **kw))
    result = invoke(*npz_run(data, "--stage1-cache", str(cache)))
    assert result.exit_code == 0, result.output
    assert warnings_in(result) == [f"warning: the Stage I cache {cache} cannot be written (no write permission); "
                                   "this run trains without storing its Stage I"]
    assert not list(cache.iterdir())


def cache_disk_full(tmp: Path, monkeypatch) -> None:
    data, cache = write_npz(tmp / "data.npz", 0), tmp / "cache"

    def full(self, path):
        raise FileWriteError(path, "No space left on device")

    monkeypatch.setattr(StageOne, "save", full)
    result = invoke(*npz_run(data, "--stage1-cache", str(cache), "--out", str(tmp / "run")))
    assert result.exit_code == 0 and (tmp / "run" / RESULT).is_file(), result.output
    assert any("No space left on device" in line and "the run goes on" in line for line in warnings_in(result))


# --------------------------------------------------------------------------- a file-size limit while writing
LIMITED = """
import resource, signal, sys
limit = int(sys.argv.pop(1))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
""" + CLI


def _limited(tmp: Path, limit: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LIMITED, str(limit), *args], capture_output=True, text=True,
                          timeout=300, cwd=tmp)


def _assert_limited(done: subprocess.CompletedProcess, path_fragment: str) -> None:
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert errors[0].startswith("error: cannot write ") and path_fragment in errors[0] and "file too large" in errors[0]
    assert done.stderr.strip().splitlines()[-1] == errors[0]  # the last word (progress bars may stand above it)


def size_limit_writing_results(tmp: Path) -> None:
    data = write_npz(tmp / "data.npz", 0)
    out = tmp / "run"
    _assert_limited(_limited(tmp, 1000, *npz_run(data, "--out", str(out))), str(out))
    assert not (out / RESULT).exists() and not list(out.glob("*.npy")) and leftovers(out) == []


def size_limit_writing_a_checkpoint(tmp: Path) -> None:
    data = write_npz(tmp / "data.npz", 0)
    out = tmp / "run"
    _assert_limited(_limited(tmp, 1000, *npz_run(data, "--out", str(out), "--checkpoint-every", "1")), CHECKPOINT)
    assert not (out / CHECKPOINT).exists() and not (out / RESULT).exists() and leftovers(out) == []


# --------------------------------------------------------------------------- an unusable --out
def out_dangling_symlink(tmp: Path) -> None:
    gone = tmp / "gone"
    gone.mkdir()
    (tmp / "link").symlink_to(gone)
    gone.rmdir()
    assert_one_line_error(invoke(*npz_run(write_npz(tmp / "data.npz", 0), "--out", str(tmp / "link"))),
                          "is a symbolic link to", "which does not exist")


def out_name_too_long(tmp: Path) -> None:
    assert_one_line_error(invoke(*npz_run(write_npz(tmp / "data.npz", 0), "--out", str(tmp / ("x" * 300)))),
                          "longer than the", "this file system allows")
    assert sorted(p.name for p in tmp.iterdir()) == ["data.npz"]


def out_under_a_file(tmp: Path) -> None:
    (tmp / "a-file").write_text("x")
    assert_one_line_error(invoke(*npz_run(write_npz(tmp / "data.npz", 0), "--out", str(tmp / "a-file" / "run"))),
                          "is a file")


CASES = {
    "data rewritten before resume": [resume_on_rewritten_pixels, resume_on_rewritten_labels],
    "data rewritten before a rerun": [ablate_again_on_rewritten_data],
    "damaged cache entries": [damaged_entry_trains_again, truncated_entry_trains_again, stale_temporaries_go],
    "caches that cannot be written": [cache_path_is_a_file, cache_folder_read_only, cache_disk_full],
    "file-size limit while writing": [size_limit_writing_results, size_limit_writing_a_checkpoint],
    "unusable --out": [out_dangling_symlink, out_name_too_long, out_under_a_file],
}
FLAT = [(kind, case) for kind, cases in CASES.items() for case in cases]


@pytest.mark.parametrize("kind, case", FLAT, ids=[f"{kind}: {case.__name__}" for kind, case in FLAT])
def test_os_failure(kind, case, tmp_path, monkeypatch, with_test_plugin):
    work = tmp_path / "work"
    work.mkdir()
    if "monkeypatch" in case.__code__.co_varnames[: case.__code__.co_argcount]:
        case(work, monkeypatch)
    else:
        case(work)


def test_every_class_has_its_cases():
    assert Counter({kind: len(cases) for kind, cases in CASES.items()}) == {
        "data rewritten before resume": 2, "data rewritten before a rerun": 1, "damaged cache entries": 3,
        "caches that cannot be written": 3, "file-size limit while writing": 2, "unusable --out": 3,
    }
