"""Bad invocations and inputs, across commands and class by class: each gives exit code 2, exactly one
`error:` line, no traceback, and leaves nothing behind."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from conftest import invoke

from dscsc_core.run.config import SELECTIONS
from dscsc_core.run.outputs import RunFolder
from dscsc_core.settings import RUN_SETTINGS

FAST = ["--pretrain-epochs", "1", "--epochs", "1"]
BEYOND_INT64 = str(2**63)
INT64_MESSAGE = f"must be <= {2**63 - 1}"
OPTION_OF_KIND = {kind: option for option, kind in SELECTIONS.items()}


def result_summary(n_samples: int = 4) -> dict:
    """A result.json that `dscsc compare` reads (see test_the_run_folder_template_is_a_run)."""
    parts = {option: {"kind": kind, "name": f"some-{kind}", "params": {}} for option, kind in SELECTIONS.items()}
    return {"format": 1, "dscsc_version": "0.1.0", "config": {}, "seed": 0, "device": "cpu",
            "data": {"n_samples": n_samples, "n_clusters": 2, "input_shape": [1, 4, 4], "has_labels": True},
            "components": parts, "metrics": {"acc": 1.0, "nmi": 1.0, "ari": 1.0}, "final_losses": {"drh": 0.5},
            "timings": {"load_s": 0.1, "pretrain_s": 0.1, "finetune_s": 0.1, "cluster_s": 0.1, "total_s": 0.4}}


def run_folder(folder, result: dict | str | bytes | None = None, n_arrays: int = 4):
    """A run folder as `dscsc run --out` writes it, with ``result`` as its result.json."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "labels.npy", np.arange(n_arrays) % 2)
    np.save(folder / "affinity.npy", rng.random((n_arrays, n_arrays)).astype(np.float32))
    np.save(folder / "embedding.npy", rng.random((n_arrays, 3)).astype(np.float32))
    (folder / "metrics.csv").write_text("stage,epoch,drh,sch,sem,total,acc,nmi,ari\npretrain,1,0.5,0.2,,0.7,,,\n")
    result = result_summary() if result is None else result
    text = json.dumps(result) if isinstance(result, dict) else result
    (folder / "result.json").write_bytes(text if isinstance(text, bytes) else text.encode())


def files(tmp):
    """Bad files of every kind, built once per test in ``tmp``."""
    (tmp / "corrupt.toml").write_text("epochs = [unclosed\n")
    (tmp / "wrong-type.toml").write_text('seed = "many"\n')
    (tmp / "latin-1.toml").write_bytes(b'dataset = "caf\xe9"\n')
    (tmp / "nan-lr.toml").write_text("lr = nan\n")
    (tmp / "huge-seed.toml").write_text(f"seed = {2**40}\n")
    (tmp / "latin_1_plugin.py").write_bytes(b'NAME = "caf\xe9"\n')
    (tmp / "not-a-mat.mat").write_bytes(b"definitely not MATLAB")
    np.savez(tmp / "bad-shape.npz", images=np.zeros((4, 2, 3, 5, 6)))
    np.savez(tmp / "bad-labels.npz", images=np.zeros((6, 8, 8)), labels=np.arange(5))
    np.savez(tmp / "one-class.npz", images=np.random.default_rng(0).random((6, 8, 8)), labels=np.zeros(6))
    np.savez(tmp / "nan.npz", images=np.full((6, 8, 8), np.nan))
    (tmp / "empty-folder").mkdir()
    (tmp / "a-file").write_text("x")
    (tmp / "checkpoint-dir").mkdir()
    (tmp / "checkpoint-dir" / "checkpoint.pt").write_bytes(b"garbage")
    _run_folders(tmp)
    return tmp


def _run_folders(tmp):
    valid = result_summary()
    older = {k: v for k, v in valid.items() if k not in ("format", "data", "timings")}
    run_folder(tmp / "result-valid")
    run_folder(tmp / "result-empty", {})
    run_folder(tmp / "result-older", older)
    run_folder(tmp / "result-truncated", json.dumps(valid)[:60])
    run_folder(tmp / "result-newer", {**valid, "format": 99})
    run_folder(tmp / "result-latin-1", b'{"seed": "caf\xe9"}')
    run_folder(tmp / "result-list", "[1, 2]")
    run_folder(tmp / "result-bad-time", {**valid, "timings": {**valid["timings"], "total_s": "fast"}})
    run_folder(tmp / "result-bad-score", {**valid, "metrics": {"acc": "high", "nmi": 1.0, "ari": 1.0}})
    run_folder(tmp / "mixed-sizes", result_summary(n_samples=5))
    run_folder(tmp / "broken-npy")
    (tmp / "broken-npy" / "labels.npy").write_bytes(b"\x93NUMPY garbage")
    run_folder(tmp / "broken-csv")
    (tmp / "broken-csv" / "metrics.csv").write_text("stage,epoch,drh\npretrain,1,lots\n")
    (tmp / "busy").mkdir()  # held by the test while the case runs


# Every core float setting, as NaN and as infinity.
CORE_FLOATS = [p.name for p in RUN_SETTINGS if p.type is float]
# Every float parameter of the built-in plugins: (kind, plugin, parameter, value); see the coverage test.
PLUGIN_FLOATS = [
    ("augmentation", "geometric", "degrees", "nan"),
    ("augmentation", "geometric", "translate", "inf"),
    ("augmentation", "geometric", "shear", "-inf"),
    ("augmentation", "geometric", "scale_max", "nan"),
    ("augmentation", "geometric", "p", "inf"),
    ("augmentation", "policy", "magnitude", "nan"),
    ("augmentation", "policy", "p", "-inf"),
    ("regularizer", "l1", "weight", "nan"),
    ("regularizer", "l2", "weight", "inf"),
    ("clusterer", "dsc-post", "ratio", "nan"),
    ("clusterer", "dsc-post", "power", "inf"),
    ("dataset", "synthetic", "noise", "nan"),
    ("feature", "scattering", "log_scale", "inf"),
    ("solver", "ssc", "fit_alpha", "nan"),
    ("solver", "ssc", "tol", "inf"),
    ("solver", "ensc", "tradeoff", "nan"),
    ("solver", "ensc", "fit_gamma", "inf"),
    ("solver", "ensc", "tol", "-inf"),
    ("solver", "kssc", "kernel_gamma", "nan"),
    ("solver", "kssc", "fit_alpha", "inf"),
    ("solver", "kssc", "tol", "nan"),
    ("solver", "ssc-omp", "residual_tol", "inf"),
    ("solver", "lsr", "lam", "nan"),
    ("solver", "lrsc", "tau", "inf"),
    ("solver", "lrr", "lam", "nan"),
    ("solver", "lrr", "energy", "inf"),
    ("solver", "lrr", "tol", "nan"),
    ("objective", "s2convscn", "agreement_weight", "inf"),
    ("objective", "s2convscn", "classifier_weight", "nan"),
    ("objective", "dasc", "weight", "nan"),
    ("objective", "dasc", "real_fraction", "inf"),
    ("objective", "dasc", "margin", "-inf"),
]
# Every whole-number setting beyond what torch and NumPy hold (the seed: beyond what they accept as a seed).
CORE_INTS = [p for p in RUN_SETTINGS if p.type is int and p.name != "seed"]
PLUGIN_INTS = [
    ("miner", "knn", "k", BEYOND_INT64),
    ("miner", "affinity", "k", BEYOND_INT64),
    ("miner", "classmates", "clusters", BEYOND_INT64),
    ("clusterer", "dsc-post", "dim", BEYOND_INT64),
    ("clusterer", "sparse-spectral", "k", BEYOND_INT64),
    ("clusterer", "sparse-spectral", "n_components", BEYOND_INT64),
    ("feature", "scattering", "scales", BEYOND_INT64),
    ("feature", "scattering", "orientations", BEYOND_INT64),
    ("feature", "scattering", "batch", BEYOND_INT64),
    ("dataset", "synthetic", "subspaces", BEYOND_INT64),
    ("dataset", "synthetic", "per_subspace", BEYOND_INT64),
    ("dataset", "synthetic", "subspace_dim", BEYOND_INT64),
    ("dataset", "synthetic", "size", BEYOND_INT64),
    ("dataset", "synthetic", "data_seed", BEYOND_INT64),
    ("dataset", "mnist-test", "per_class", BEYOND_INT64),
    ("encoder", "conv1", "channels", BEYOND_INT64),
    ("encoder", "conv1", "kernels", f"3,{BEYOND_INT64}"),
    ("encoder", "conv3", "channels", f"3,3,{BEYOND_INT64}"),
    ("encoder", "conv3", "kernels", BEYOND_INT64),
    ("dataset", "folder", "size", f"32,{BEYOND_INT64}"),
    ("dataset", "mat", "shape", f"{BEYOND_INT64},2"),
    ("solver", "ssc", "iterations", BEYOND_INT64),
    ("solver", "ensc", "iterations", BEYOND_INT64),
    ("solver", "kssc", "iterations", BEYOND_INT64),
    ("solver", "kssc", "degree", BEYOND_INT64),
    ("solver", "ssc-omp", "sparsity", BEYOND_INT64),
    ("solver", "lrr", "iterations", BEYOND_INT64),
    ("objective", "s2convscn", "every", BEYOND_INT64),
    ("objective", "dasc", "every", BEYOND_INT64),
    ("objective", "dasc", "dim", BEYOND_INT64),
]


def _plugin_case(kind: str, plugin: str, param: str, value: str) -> tuple[list[str], str]:
    option = OPTION_OF_KIND[kind]
    args = ["run", f"--{option}", plugin, f"--{option}.{param.replace('_', '-')}", value]
    return args, f"{kind} '{plugin}' parameter '{param}' must be"


MATRIX: dict[str, list[tuple[list[str], str]]] = {
    "unknown names": [
        (["run", "--miner", "knnn"], "unknown miner 'knnn'"),
        (["run", "--encoder", "conv9"], "unknown encoder 'conv9'"),
        (["run", "--dataset", "orll"], "unknown dataset 'orll'"),
        (["run", "--preset", "nope"], "unknown preset 'nope'"),
        (["run", "--augment", "flip"], "unknown augmentation 'flip'"),
        (["plugins", "show", "miners", "knn"], "unknown plugin kind 'miners'"),
        (["bench", "--preset", "nope"], "unknown preset 'nope'"),
        (["tune", "--preset", "tiny-synthetic", "--grid", "k=2", "--bogus", "1"], "unknown plugin parameter --bogus"),
    ],
    "wrong types": [
        (["run", "--epochs", "ten"], "expects int"),
        (["run", "--lr", "fast"], "expects float"),
        (["run", "--hflip", "maybe"], "expects bool"),
        (["run", "--encoder", "conv3", "--channels", "3,x,5"], "expects comma-separated ints"),
        (["run", "--seeds", "3"], "unknown plugin parameter --seeds"),
    ],
    "out-of-range values": [
        (["run", "--lr", "-1"], "'lr' must be >= 0"),
        (["run", "--k", "-5"], "must be >= 0"),
        (["run", "--ratio", "1.5"], "must be <= 1"),
        (["run", "--assign-labels", "magic"], "must be one of"),
        (["run", "--encoder", "conv3", "--channels", "3,3"], "needs 3 channel and kernel values"),
        (["run", "--n-clusters", "1"], "'n_clusters' must be >= 2"),
        (["run", "--objective", "dasc", "--every", "0"], "objective 'dasc' parameter 'every' must be >= 1"),
        (["run", "--clusterer", "sparse-spectral", "--clusterer.k", "5000"],
         "clusterer 'sparse-spectral' parameter 'k' must be smaller than N"),
        (["run", "--head-dim", "100000000"], "'head_dim' must be <= 4096"),
        (["run", "--encoder", "conv3", "--channels", "3,3,500000"], "parameter 'channels' must be <= 1024"),
        (["run", "--encoder", "conv1", "--kernels", "99"], "parameter 'kernels' must be <= 31"),
        (["tune", "--preset", "tiny-synthetic", "--grid", "k"], "write NAME=V1,V2"),
        (["ablate", "--preset", "tiny-synthetic", "--grid", "miner=knn,bogus"], "unknown miner 'bogus'"),
    ],
    "non-finite floats": [
        *((["run", f"--{name.replace('_', '-')}", value], f"'{name}' must be a finite number; got {value}")
          for name in CORE_FLOATS for value in ("nan", "inf")),
        *(_plugin_case(*case) for case in PLUGIN_FLOATS),
        (["run", "--beta", "1e400"], "'beta' must be a finite number; got inf"),
        (["run", "--config", "{tmp}/nan-lr.toml"], "'lr' must be a finite number; got nan"),
        (["tune", "--preset", "tiny-synthetic", "--grid", "temperature=nan,0.1"], "'temperature' must be a finite"),
    ],
    "whole numbers out of range": [
        *((["run", f"--{p.name.replace('_', '-')}", BEYOND_INT64],
           f"'{p.name}' " + (f"must be <= {p.max:g}" if p.max is not None else INT64_MESSAGE)) for p in CORE_INTS),
        *(_plugin_case(*case) for case in PLUGIN_INTS),
        (["run", "--seed", "12345678901"], "'seed' must be <= 4294967295; got 12345678901"),
        (["run", "--seed", str(2**64)], "'seed' must be <= 4294967295"),
        (["run", "--seed", str(2**32)], "'seed' must be <= 4294967295"),
        (["run", "--seed", "-1"], "'seed' must be >= 0"),
        (["run", "--config", "{tmp}/huge-seed.toml", "--dataset", "synthetic"], "'seed' must be <= 4294967295"),
        (["bench", "--preset", "tiny-synthetic", "--seeds", BEYOND_INT64, "--out", "{tmp}/bench"],
         f"'seeds' {INT64_MESSAGE}"),
        (["tune", "--preset", "tiny-synthetic", "--grid", "k=1", "--seeds", "0"], "'seeds' must be >= 1"),
    ],
    "usage errors": [
        (["run", "--epochs"], "option '--epochs' requires an argument"),
        (["run", "--resume"], "option '--resume' requires an argument"),
        (["bench", "--preset"], "option '--preset' requires an argument"),
        (["rn"], "no such command 'rn'"),
        (["plugins", "lst"], "no such command 'lst'"),
        (["compare"], "missing argument"),
        (["report"], "missing argument"),
        (["plugins", "show", "encoder"], "missing argument"),
        (["plugins", "list", "--bogus"], "no such option: --bogus"),
        (["tune", "--grid", "k=1", "--subspace-dim", "x"], "invalid value for '--subspace-dim'"),
    ],
    "missing or unreadable files": [
        (["run", "--config", "{tmp}/missing.toml"], "config file not found"),
        (["run", "--config", "{tmp}/corrupt.toml"], "not valid TOML"),
        (["run", "--config", "{tmp}/wrong-type.toml"], "expects int"),
        (["run", "--config", "{tmp}/latin-1.toml"], "latin-1.toml is not UTF-8 text (byte 0xe9"),
        (["run", "--config", "{tmp}/empty-folder"], "cannot read config file"),
        (["run", "--dataset", "orl", "--data-root", "{tmp}"], "needs orl/ORL_32x32.mat"),
        (["run", "--dataset", "mat", "--path", "{tmp}/missing.mat"], "not found"),
        (["run", "--dataset", "mat", "--path", "{tmp}/not-a-mat.mat"], "not-a-mat.mat"),
        (["run", "--plugin", "{tmp}/missing_plugin.py"], "plugin file not found"),
        (["run", "--plugin", "{tmp}/latin_1_plugin.py"], "failed to import"),
        (["run", "--resume", "{tmp}/checkpoint-dir"], "is damaged or not a dscsc file"),
        (["run", "--resume", "{tmp}/empty-folder"], "no checkpoint at"),
    ],
    "bad data": [
        (["run", "--dataset", "npz", "--path", "{tmp}/bad-shape.npz"], "bad-shape.npz"),
        (["run", "--dataset", "npz", "--path", "{tmp}/bad-labels.npz"], "labels"),
        (["run", "--dataset", "folder", "--path", "{tmp}/empty-folder"], "empty-folder"),
        (["run", "--dataset", "tiny", "--count", "0"], "is empty"),
        (["run", "--dataset", "npz", "--path", "{tmp}/one-class.npz", "--k", "2"], "one class only"),
        (["run", "--dataset", "npz", "--path", "{tmp}/nan.npz"], "NaN"),
        (["run", "--dataset", "nan-images"], "NaN or Inf"),
        (["run", "--n-clusters", "5000"], "fewer than the 5000 clusters"),
    ],
    "unwritable output": [
        (["run", "--out", "{tmp}/a-file/run"], "is a file"),
        (["run", "--out", "{tmp}/a-file"], "not a folder"),
        (["tune", "--preset", "tiny-synthetic", "--grid", "k=1", "--write", "{tmp}/empty-folder"], "is a folder"),
        (["tune", "--preset", "tiny-synthetic", "--grid", "k=1", "--write", "{tmp}/a-file/best.toml"],
         "not a folder"),
        (["ablate", "--preset", "tiny-synthetic", "--grid", "k=1", "--out", "{tmp}/a-file"], "not a folder"),
    ],
    "run folders in use": [
        (["run", "--out", "{tmp}/busy"], "run folder {tmp}/busy is in use by another dscsc process (pid"),
        (["run", "--resume", "{tmp}/busy"], "run folder {tmp}/busy is in use"),
        (["report", "{tmp}/busy"], "run folder {tmp}/busy is in use"),
        (["ablate", "--preset", "tiny-synthetic", "--grid", "k=1", "--out", "{tmp}/busy"], "{tmp}/busy is in use"),
    ],
    "run folders that cannot be read": [
        (["report", "{tmp}/nowhere"], "does not exist"),
        (["compare", "{tmp}/empty-folder"], "not a complete run folder: missing result.json"),
        (["report", "{tmp}/result-empty"], "result-empty/result.json (result format 0) lacks dscsc_version, config"),
        (["compare", "{tmp}/result-empty"], "result-empty/result.json (result format 0) lacks dscsc_version"),
        (["compare", "{tmp}/result-valid", "{tmp}/result-older"],
         "result-older/result.json (result format 0) lacks data.n_samples, data.n_clusters, timings.total_s"),
        (["report", "{tmp}/result-truncated"], "result-truncated/result.json is not valid JSON"),
        (["compare", "{tmp}/result-truncated"], "result-truncated/result.json is not valid JSON"),
        (["compare", "{tmp}/result-newer"], "result-newer/result.json has result format 99"),
        (["report", "{tmp}/result-latin-1"], "result-latin-1/result.json is not UTF-8 text"),
        (["compare", "{tmp}/result-list"], "result-list/result.json is not a dscsc result"),
        (["compare", "{tmp}/result-bad-time"], "result-bad-time/result.json (result format 1) lacks timings.total_s"),
        (["report", "{tmp}/result-bad-score"], "lacks metrics.acc"),
        (["compare", "{tmp}/mixed-sizes"], "mixed-sizes/labels.npy has shape (4,), but"),
        (["report", "{tmp}/broken-npy"], "broken-npy/labels.npy is damaged"),
        (["report", "{tmp}/broken-csv"], "broken-csv/metrics.csv is damaged"),
    ],
    "devices": [
        (["run", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "--device", "cuda:99"], "cuda:99"),
    ],
}
CASES = [(name, args, fragment) for name, cases in MATRIX.items() for args, fragment in cases]


def _completed(args: list[str]) -> list[str]:
    """A `run` case gets a small dataset and short training, ahead of its own arguments, where it does
    not name them itself."""
    if args[0] != "run":
        return args
    defaults = ["--dataset", "synthetic"] * ("--dataset" not in args and "--preset" not in args
                                             and "--resume" not in args and "--config" not in args)
    defaults += [a for i, a in enumerate(FAST) if FAST[i - i % 2] not in args]
    return ["run", *defaults, *args[1:]]


@pytest.mark.parametrize("kind, args, fragment", CASES, ids=[f"{k}: {' '.join(a)[:60]}" for k, a, _ in CASES])
def test_bad_invocation(tmp_path, kind, args, fragment):
    tmp = files(tmp_path)
    with RunFolder(tmp / "busy"):
        before = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
        result = invoke(*_completed([a.replace("{tmp}", str(tmp)) for a in args]))
        after = sorted(p.relative_to(tmp) for p in tmp.rglob("*"))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert fragment.replace("{tmp}", str(tmp)) in lines[0], lines[0]
    assert after == before, "a failed command must leave nothing behind"


def test_the_run_folder_template_is_a_run(tmp_path):
    """The unreadable run folders above differ from a readable one only in what each breaks."""
    run_folder(tmp_path / "run")
    result = invoke("compare", str(tmp_path / "run"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["dataset"] == "some-dataset"


def _builtin_params(*types) -> set[tuple[str, str, str]]:
    from dscsc_core.plugin_api.registry import load_registry

    return {(info.kind, info.name, param.name) for info in load_registry(strict=True)
            if info.distribution == "dscsc" for param in info.params if param.type in types}


def test_every_float_and_int_parameter_of_the_builtin_plugins_has_a_case():
    assert {case[:3] for case in PLUGIN_FLOATS} == _builtin_params(float)
    assert {case[:3] for case in PLUGIN_INTS} == _builtin_params(int, "ints")


def test_every_class_has_its_cases():
    counts = Counter(kind for kind, _, _ in CASES)
    assert counts == {
        "unknown names": 8, "wrong types": 5, "out-of-range values": 13,
        "non-finite floats": 2 * len(CORE_FLOATS) + len(PLUGIN_FLOATS) + 3,
        "whole numbers out of range": len(CORE_INTS) + len(PLUGIN_INTS) + 7,
        "usage errors": 10, "missing or unreadable files": 12, "bad data": 8, "unwritable output": 5,
        "run folders in use": 4, "run folders that cannot be read": 15, "devices": 2,
    }
    assert len(CORE_FLOATS) >= 8 and len(CORE_INTS) >= 8  # the settings come from RUN_SETTINGS: never none
