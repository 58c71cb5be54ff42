"""Bad invocations and inputs, across commands: each gives a non-zero exit, exactly one `error:` line,
no traceback, and leaves no output behind."""

from __future__ import annotations

import numpy as np
import pytest
from test_cli import invoke, with_test_plugin  # noqa: F401  (autouse fixture)

FAST = ["--pretrain-epochs", "1", "--epochs", "1"]


def files(tmp):
    """Bad files of every kind, built once per test in ``tmp``."""
    (tmp / "corrupt.toml").write_text("epochs = [unclosed\n")
    (tmp / "wrong-type.toml").write_text('seed = "many"\n')
    (tmp / "not-a-mat.mat").write_bytes(b"definitely not MATLAB")
    np.savez(tmp / "bad-shape.npz", images=np.zeros((4, 2, 3, 5, 6)))
    np.savez(tmp / "bad-labels.npz", images=np.zeros((6, 8, 8)), labels=np.arange(5))
    np.savez(tmp / "one-class.npz", images=np.random.default_rng(0).random((6, 8, 8)), labels=np.zeros(6))
    np.savez(tmp / "nan.npz", images=np.full((6, 8, 8), np.nan))
    (tmp / "empty-folder").mkdir()
    (tmp / "a-file").write_text("x")
    (tmp / "checkpoint-dir").mkdir()
    (tmp / "checkpoint-dir" / "checkpoint.pt").write_bytes(b"garbage")
    return tmp


CASES = [
    # unknown names
    (["run", "--miner", "knnn"], "unknown miner 'knnn'"),
    (["run", "--encoder", "conv9"], "unknown encoder 'conv9'"),
    (["run", "--dataset", "orll"], "unknown dataset 'orll'"),
    (["run", "--preset", "nope"], "unknown preset 'nope'"),
    (["run", "--augment", "flip"], "unknown augmentation 'flip'"),
    (["plugins", "show", "miners", "knn"], "unknown plugin kind 'miners'"),
    (["bench", "--preset", "nope"], "unknown preset 'nope'"),
    # wrong types
    (["run", "--epochs", "ten"], "expects int"),
    (["run", "--lr", "fast"], "expects float"),
    (["run", "--hflip", "maybe"], "expects bool"),
    (["run", "--encoder", "conv3", "--channels", "3,x,5"], "expects comma-separated ints"),
    (["run", "--seeds", "3"], "unknown option --seeds"),
    # out-of-range values
    (["run", "--lr", "-1"], "'lr' must be >= 0"),
    (["run", "--k", "-5"], "must be >= 0"),
    (["run", "--ratio", "1.5"], "must be <= 1"),
    (["run", "--assign-labels", "magic"], "must be one of"),
    (["run", "--encoder", "conv3", "--channels", "3,3"], "needs 3 channel and kernel values"),
    (["tune", "--preset", "tiny-synthetic", "--grid", "k"], "write NAME=V1,V2"),
    (["ablate", "--preset", "tiny-synthetic", "--grid", "miner=knn,bogus"], "unknown miner 'bogus'"),
    # missing or unreadable files
    (["run", "--config", "{tmp}/missing.toml"], "config file not found"),
    (["run", "--config", "{tmp}/corrupt.toml"], "not valid TOML"),
    (["run", "--config", "{tmp}/wrong-type.toml"], "expects int"),
    (["run", "--dataset", "orl", "--data-root", "{tmp}"], "needs orl/ORL_32x32.mat"),
    (["run", "--dataset", "mat", "--path", "{tmp}/missing.mat"], "not found"),
    (["run", "--dataset", "mat", "--path", "{tmp}/not-a-mat.mat"], "not-a-mat.mat"),
    (["run", "--plugin", "{tmp}/missing_plugin.py"], "plugin file not found"),
    (["run", "--resume", "{tmp}/checkpoint-dir"], "damaged or not a dscsc checkpoint"),
    (["report", "{tmp}/nowhere"], "does not exist"),
    # wrong shapes, empty data, one class, NaN, labels of the wrong length
    (["run", "--dataset", "npz", "--path", "{tmp}/bad-shape.npz"], "bad-shape.npz"),
    (["run", "--dataset", "npz", "--path", "{tmp}/bad-labels.npz"], "labels"),
    (["run", "--dataset", "folder", "--path", "{tmp}/empty-folder"], "empty-folder"),
    (["run", "--dataset", "tiny", "--count", "0"], "is empty"),
    (["run", "--dataset", "npz", "--path", "{tmp}/one-class.npz", "--k", "2"], "one class only"),
    (["run", "--n-clusters", "1"], "'n_clusters' must be >= 2"),
    (["run", "--dataset", "npz", "--path", "{tmp}/nan.npz"], "NaN"),
    (["run", "--dataset", "nan-images"], "NaN or Inf"),
    (["run", "--n-clusters", "5000"], "fewer than the 5000 clusters"),
    # unwritable output
    (["run", "--out", "{tmp}/a-file/run"], "is a file"),
    (["run", "--out", "{tmp}/a-file"], "not a folder"),
    # devices
    (["run", "--device", "tpu"], "unknown device 'tpu'"),
]


@pytest.mark.parametrize("args, fragment", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_invocation(tmp_path, args, fragment):
    tmp = files(tmp_path)
    before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    args = [a.replace("{tmp}", str(tmp)) for a in args]
    if args[0] == "run":
        args += ["--dataset", "synthetic"] * ("--dataset" not in args and "--preset" not in args
                                               and "--resume" not in args and "--config" not in args)
        args += [a for i, a in enumerate(FAST) if FAST[i - i % 2] not in args]  # flags the case did not set
    result = invoke(*args)
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert fragment in lines[0], lines[0]
    assert sorted(p.relative_to(tmp) for p in tmp.rglob("*")) == before, "a failed run must leave nothing behind"


def test_the_matrix_is_at_least_thirty_cases():
    assert len(CASES) >= 30
