"""Runs on a GPU: components keep their tensors there, a run trains there and computes what the CPU
computes, and the same seed gives the same numbers. Skipped on machines without CUDA (CI has none);
`benchmarks/gpu_check.sh` runs them where a GPU is lent, with the rest of the suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import invoke

from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.testing import check_augmentation, check_encoder, check_miner, check_regularizer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# Digits through the conv1 autoencoder: convolutions (cuDNN), the N x N product and every loss term.
DIGITS = {"dataset": "digits", "pretrain_epochs": 4, "epochs": 4, "seed": 0}
CHECKS = {"miner": check_miner, "augmentation": check_augmentation, "regularizer": check_regularizer}


def _run(registry, device, **overrides):
    return execute(prepare(resolve_config(registry, DIGITS, {"device": device, **overrides}), registry))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("kind", ["miner", "augmentation", "regularizer", "encoder"])
def test_every_builtin_keeps_its_tensors_on_the_gpu(registry, kind):
    infos = [info for info in registry if info.kind == kind and info.provider == "builtins"]
    assert infos
    for info in infos:
        if kind == "encoder":
            check_encoder(info.factory, (1, 32, 32), device="cuda")
        else:
            CHECKS[kind](info.factory, device="cuda")


def test_every_operation_of_the_augmentation_policy_works_on_the_gpu():
    from dscsc_plugins.augmentations import OPERATIONS, PolicyAugmentation

    for ops in OPERATIONS:
        check_augmentation(PolicyAugmentation(ops=ops, magnitude=0.7, p=0.5), device="cuda")
    images = torch.rand(6, 3, 16, 16, device="cuda") * 255
    assert PolicyAugmentation(ops="rotate+noise", p=1.0)(images).device == images.device


def test_a_gpu_run_trains_there_and_hands_back_host_arrays(registry):
    torch.cuda.reset_peak_memory_stats()
    result = _run(registry, "cuda", pretrain_epochs=60, epochs=60)
    assert torch.cuda.max_memory_allocated() > 1797**2 * 4  # C itself lived on the GPU
    assert result.summary["device"].startswith("cuda")
    assert isinstance(result.coef, np.ndarray) and result.coef.shape == (1797, 1797)
    assert np.isfinite(result.coef).all() and np.all(np.diag(result.coef) == 0.0)
    print(f"digits on the GPU, 60 + 60 epochs: ACC {result.metrics['acc']:.4f}")
    assert result.metrics["acc"] > 0.5  # ten classes: far above chance after a short run


def test_fp32_on_the_gpu_is_ieee_fp32_with_deterministic_kernels_during_the_run_only(registry):
    cudnn = torch.backends.cudnn
    seen = []
    run = prepare(resolve_config(registry, DIGITS, {"device": "cuda", "pretrain_epochs": 1, "epochs": 1}), registry)
    before = cudnn.allow_tf32, cudnn.deterministic
    execute(run, on_epoch=lambda report: seen.append((cudnn.allow_tf32, cudnn.deterministic)))
    assert seen and set(seen) == {(False, True)}
    assert (cudnn.allow_tf32, cudnn.deterministic) == before


def test_the_same_seed_gives_the_same_numbers_on_the_gpu(registry):
    first, second = _run(registry, "cuda"), _run(registry, "cuda")
    np.testing.assert_array_equal(first.coef, second.coef)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert [r.losses for r in first.history] == [r.losses for r in second.history]


def test_the_gpu_computes_what_the_cpu_computes_without_augmentation(registry):
    # With no augmentation nothing random is drawn on the device, so both start from the same weights
    # (drawn on the CPU) and differ only by the order of fp32 sums.
    settings = {"augment": "none", "beta": 0.0}
    gpu, cpu = _run(registry, "cuda", **settings), _run(registry, "cpu", **settings)
    for on_gpu, on_cpu in zip(gpu.history, cpu.history, strict=True):
        for term, value in on_cpu.losses.items():
            assert on_gpu.losses[term] == pytest.approx(value, rel=1e-4), (on_cpu.stage, on_cpu.epoch, term)
    difference = _relative(gpu.coef, cpu.coef)
    print(f"C, GPU against CPU after 4 + 4 epochs: relative difference {difference:.2e}")
    assert difference < 1e-3


def test_bf16_on_the_gpu_trains_and_keeps_c_and_the_losses_fp32(registry):
    fp32, bf16 = _run(registry, "cuda"), _run(registry, "cuda", precision="bf16")
    assert bf16.coef.dtype == np.float64 and np.isfinite(bf16.coef).all()
    first_fp32, first_bf16 = fp32.history[0].losses["drh"], bf16.history[0].losses["drh"]
    assert first_bf16 == pytest.approx(first_fp32, rel=0.05)  # the same network, rounded to bf16
    assert first_bf16 != first_fp32


def test_a_gpu_run_trains_its_own_stage1_beside_a_cpu_one(registry, tmp_path):
    on_cpu = execute(prepare(resolve_config(registry, DIGITS, {"device": "cpu"}), registry), stage1_cache=tmp_path)
    on_gpu = execute(prepare(resolve_config(registry, DIGITS, {"device": "cuda"}), registry), stage1_cache=tmp_path)
    again = execute(prepare(resolve_config(registry, DIGITS, {"device": "cuda"}), registry), stage1_cache=tmp_path)
    assert not on_cpu.summary["stage1"]["reused"] and not on_gpu.summary["stage1"]["reused"]
    assert again.summary["stage1"]["reused"]
    assert len(list(tmp_path.glob("stage1-*.pt"))) == 2
    np.testing.assert_array_equal(again.coef, on_gpu.coef)


def test_the_cli_runs_on_the_gpu_and_says_so(tmp_path):
    result = invoke("run", "--dataset", "digits", "--pretrain-epochs", "3", "--epochs", "3", "--device", "cuda",
                    "--out", str(tmp_path / "run"), "--json")
    assert result.exit_code == 0, result.output[-2000:]
    summary = json.loads((tmp_path / "run" / "result.json").read_text())
    assert summary["device"].startswith("cuda")


def test_the_estimator_fits_on_the_gpu_and_agrees_with_the_cpu_without_augmentation():
    from dscsc_core.estimator import DeepSubspaceClustering
    from dscsc_core.plugin_api.registry import load_registry

    images = load_registry(strict=True).create("dataset", "digits").load().images.numpy()[:300, 0]
    settings = {"pretrain_epochs": 3, "epochs": 3, "augment": "none", "beta": 0.0, "random_state": 0}
    on_gpu = DeepSubspaceClustering(10, device="cuda", **settings).fit(images)
    on_cpu = DeepSubspaceClustering(10, device="cpu", **settings).fit(images)
    assert isinstance(on_gpu.coef_, np.ndarray) and on_gpu.labels_.shape == (300,)
    assert _relative(on_gpu.coef_, on_cpu.coef_) < 1e-3
