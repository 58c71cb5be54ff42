"""benchmarks/profile_step.py: a real run's Stage II step, part by part, from the trainer's profiler ranges."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import benchmark_script
from torch.autograd import DeviceType

from dscsc_core.run.pipeline import execute, prepare, resolve_config
from dscsc_core.training.trainer import BACKWARD, DECODER, ENCODER, LOSSES, STEP, STEP_PARTS

profile_step = benchmark_script("profile_step")

SETTINGS = {"dataset": "synthetic", "params": {"dataset": {"subspaces": 3, "per_subspace": 10}}, "seed": 0,
            "device": "cpu", "pretrain_epochs": 1}


def _run(registry, epochs: int, **settings):
    return prepare(resolve_config(registry, SETTINGS, {"epochs": epochs, **settings}), registry)


def test_every_part_of_a_real_step_is_timed_and_the_parts_add_up_to_it(registry):
    per_step, steps = profile_step.profile_run(_run(registry, epochs=2 + 3), 3)
    assert steps == 3
    assert all(per_step[part] > 0 for part in (STEP, *STEP_PARTS))  # synthetic: augmentation, SCH, SEM all on
    assert per_step[profile_step.REST] >= 0
    assert sum(per_step[part] for part in (*STEP_PARTS, profile_step.REST)) == pytest.approx(per_step[STEP])


def test_a_run_whose_stage2_does_not_fit_the_window_is_refused(registry):
    with pytest.raises(SystemExit, match="holds 1 Stage II steps, not the 3"):
        profile_step.profile_run(_run(registry, epochs=3), 3)


def test_profiling_changes_nothing_the_run_computes_and_stops_it_after_the_steps(registry, monkeypatch):
    seen = []

    def watched(run, on_epoch, **kwargs):
        return execute(run, on_epoch=lambda report: (seen.append(report), on_epoch(report)), **kwargs)

    monkeypatch.setattr(profile_step, "execute", watched)
    profile_step.profile_run(_run(registry, epochs=4), 2)
    plain = execute(_run(registry, epochs=4))
    assert [(r.stage, r.epoch) for r in seen] == [("pretrain", 1)] + [("finetune", epoch) for epoch in range(1, 5)]
    assert [r.losses for r in seen] == [r.losses for r in plain.history]


def test_the_preset_runs_a_short_stage1_and_the_steps_asked_for(registry):
    config = resolve_config(registry, *profile_step.profiled_layers(registry, "orl", 7, "cpu", None))
    assert (config.pretrain_epochs, config.epochs, config.checkpoint_every, config.eval_every) == (1, 9, 0, 0)
    assert config.augment == "geometric" and config.beta > 0  # the rest is the preset's


def _event(name, start, end, thread=1, kernels=(), annotation=False):
    return SimpleNamespace(name=name, device_type=DeviceType.CPU, is_user_annotation=annotation,
                           time_range=SimpleNamespace(start=start, end=end), thread=thread,
                           kernels=[SimpleNamespace(duration=d) for d in kernels])


def test_gpu_kernels_go_to_the_range_their_operator_started_in_whatever_its_thread():
    events = [
        _event(STEP, 0, 100, annotation=True), _event(ENCODER, 1, 10, annotation=True),
        _event(DECODER, 10, 20, annotation=True), _event(LOSSES, 20, 30, annotation=True),
        _event(BACKWARD, 40, 90, annotation=True, kernels=[50]),  # the range's own GPU span: not counted
        _event("aten::conv2d", 2, 5, kernels=[3, 4]), _event("aten::mm", 11, 12, kernels=[5]),
        _event("aten::sum", 21, 22, kernels=[1]),
        _event("aten::convolution_backward", 45, 60, thread=2, kernels=[20]),  # autograd's device thread
        _event("aten::zero_", 35, 36, kernels=[2]),  # in the step, outside the parts
        _event("aten::copy_", 150, 160, kernels=[9]),  # after the step
    ]
    totals = profile_step.device_times(events)
    assert totals[STEP] == 35
    assert (totals[ENCODER], totals[DECODER], totals[LOSSES], totals[BACKWARD]) == (7, 5, 1, 20)
