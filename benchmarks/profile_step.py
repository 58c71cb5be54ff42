"""Where one DSCSC Stage II step goes: profile a real run of a preset on its full dataset, part by part.

Usage: python benchmarks/profile_step.py --preset orl [--threads 2] [--steps 10] [--data-root DIR] [--device cuda]

Runs the preset through the public pipeline (``execute(prepare(...))``) with a one-epoch Stage I and
``steps`` + 2 Stage II epochs under ``torch.profiler``, so what is timed is the trainer's own step with
every setting of the run (the β·scale² and γ weights, an objective's terms, the precision, the fused Adam,
freed memory kept on the CPU, IEEE fp32 and deterministic cuDNN kernels on a GPU). The trainer marks
the parts of its Stage II step with ``record_function`` ranges (``dscsc_core.training.trainer.STEP_PARTS``
inside ``STEP``); the run's ``on_epoch`` callback advances the profiler, which skips Stage I and the first
Stage II step, warms up on the second and records the last ``steps``; the run then stops, unclustered
(nothing is written). Prints milliseconds per step for
each part and for the whole step; "rest" is the step's time outside the parts (zeroing the gradients).

The times are the device's that computes the step. On the CPU: each range's total CPU time (the wall time
of the range on the training thread, its operators included; the backward pass runs on that thread too),
so the parts and the rest add up to the step. On a GPU: the summed time of the kernels launched inside
each range (from any thread: the backward pass launches its kernels from autograd's device thread), so the
parts and the rest add up to the step's busy GPU time; idle gaps and the host's launch time are not in it.
The profiler's own bookkeeping of every operator is in the CPU times: ORL's step read 40.8 ms profiled
against 38.1 ms from one epoch's report to the next of the same run unprofiled (2 CPU cores, 2026-12).
The GPU reading was written without a GPU at hand (its attribution is tested on made-up events): check it
against the CPU one on the first GPU run.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, schedule

from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import PreparedRun, execute, prepare, resolve_config
from dscsc_core.run.recipe import Recipe
from dscsc_core.run.threads import use_cpu_threads
from dscsc_core.training.checkpoint import TrainingInterrupted
from dscsc_core.training.result import EpochReport
from dscsc_core.training.trainer import (
    AUGMENTATION,
    BACKWARD,
    DECODER,
    ENCODER,
    LOSSES,
    OPTIMIZER,
    STEP,
    STEP_PARTS,
)

NAMES = {
    AUGMENTATION: "augmentation",
    ENCODER: "encoder, both views",
    DECODER: "C, CᵀZ, decoder, both views",
    LOSSES: "L_DRH, head, miner, L_SCH, L_SEM, objective",
    BACKWARD: "backward",
    OPTIMIZER: "optimizer step (Adam)",
}
REST = "rest of the step"
SKIPPED, WARMUP = 1, 1  # Stage II steps not counted: the first one (skipped), the second (the profiler warms up)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="orl")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args()
    use_cpu_threads(args.threads)
    registry = load_registry(strict=True)
    run = prepare(resolve_config(registry, *profiled_layers(registry, args.preset, args.steps, args.device,
                                                            args.data_root)), registry)
    per_step, steps = profile_run(run, args.steps)
    print_table(args.preset, run, per_step, steps)
    print(f"  ({args.threads} CPU threads, device {run.device})")


def profiled_layers(registry, preset: str, steps: int, device: str, data_root: str | None) -> list[dict]:
    """The preset's layers, with a one-epoch Stage I and the Stage II epochs the profile needs."""
    overrides = {"pretrain_epochs": 1, "epochs": SKIPPED + WARMUP + steps, "device": device,
                 "checkpoint_every": 0, "eval_every": 0}
    return Recipe(preset).layers(registry, overrides, {"data_root": data_root} if data_root else {})


def profile_run(run: PreparedRun, steps: int) -> tuple[dict[str, float], int]:
    """Execute ``run`` under the profiler; the milliseconds per recorded Stage II step of each part, of the rest
    and of the whole step (key ``STEP``), and how many steps were recorded."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if run.device.type == "cuda" else [])
    last = SKIPPED + WARMUP + steps
    reports: list[EpochReport] = []

    def on_epoch(report: EpochReport) -> None:
        reports.append(report)
        if report.stage == "finetune":
            profiler.step()

    def profiled() -> bool:  # asked after every epoch: the run stops (unclustered) once its steps are profiled
        return reports[-1].stage == "finetune" and reports[-1].epoch >= last

    # The profiler steps at each Stage II epoch's report: step k holds Stage II epoch k + 1 (step 0 also
    # holds Stage I, which is not recorded).
    window = schedule(wait=SKIPPED, warmup=WARMUP, active=steps, repeat=1)
    with profile(activities=activities, schedule=window) as profiler:
        try:
            execute(run, on_epoch=on_epoch, should_stop=profiled)
        except TrainingInterrupted:
            pass
    events = profiler.events()
    recorded = sum(1 for event in events if event.name == STEP and event.device_type == DeviceType.CPU)
    if recorded != steps:
        raise SystemExit(f"the profile holds {recorded} Stage II steps, not the {steps} asked for")
    totals = device_times(events) if run.device.type == "cuda" else cpu_times(events)
    totals[REST] = totals[STEP] - sum(totals[part] for part in STEP_PARTS)
    return {name: seconds_us / 1000 / steps for name, seconds_us in totals.items()}, recorded


def cpu_times(events: Iterable) -> dict[str, float]:
    """Microseconds in each range (summed over its openings): its total CPU time."""
    totals = dict.fromkeys((STEP, *STEP_PARTS), 0.0)
    for event in events:
        if event.name in totals and event.device_type == DeviceType.CPU:
            totals[event.name] += event.cpu_time_total
    return totals


def device_times(events: Iterable) -> dict[str, float]:
    """Microseconds of GPU work launched inside each range, from any host thread: each operator's own kernels
    go to the innermost range that was open when the operator started."""
    events = list(events)
    ranges = sorted((event.time_range.start, event.time_range.end, event.name) for event in events
                    if event.name in (STEP, *STEP_PARTS) and event.device_type == DeviceType.CPU)
    totals = dict.fromkeys((STEP, *STEP_PARTS), 0.0)
    for event in events:
        if event.device_type != DeviceType.CPU or event.is_user_annotation or not event.kernels:
            continue  # a range's own GPU span (gpu_user_annotation) would count its kernels twice
        kernels = sum(kernel.duration for kernel in event.kernels)
        start = event.time_range.start
        inside = [name for first, last, name in ranges if first <= start <= last]
        if STEP in inside:
            totals[STEP] += kernels
            parts = [name for name in inside if name != STEP]
            if parts:
                totals[parts[-1]] += kernels
    return totals


def print_table(preset: str, run: PreparedRun, per_step: dict[str, float], steps: int) -> None:
    whole = per_step[STEP]
    kind = "GPU kernel time" if run.device.type == "cuda" else "CPU time"
    print(f"{preset}: N = {run.data.images.shape[0]}, {whole:.1f} ms per step ({kind}, mean of {steps} steps)")
    for part in (*STEP_PARTS, REST):
        share = 100 * per_step[part] / whole if whole else 0.0
        print(f"  {NAMES.get(part, part):44s} {per_step[part]:8.1f} ms  {share:5.1f} %")


if __name__ == "__main__":
    main()
