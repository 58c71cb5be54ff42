"""Where one DSCSC Stage II step goes: time each part of the step on a preset's full dataset.

Usage: python benchmarks/profile_step.py --preset orl [--threads 2] [--steps 10] [--data-root DIR] [--device cuda]

Repeats the trainer's Stage II step (two views, DRH, head, miner, SCH, SEM, backward, Adam) part by
part from a fresh network, after two warm-up steps, and prints milliseconds per part. The parts
are the trainer's own components and losses; only the timing between them is added here. On a GPU
each lap waits for the device to finish (so the parts add up to the step). Memory and precision are
a run's (freed memory kept on the CPU; IEEE fp32 and deterministic cuDNN kernels on a GPU).
"""

from __future__ import annotations

import argparse
import time

import torch

from dscsc_core.plugin_api.registry import load_registry
from dscsc_core.run.pipeline import prepare, resolve_config
from dscsc_core.run.recipe import Recipe
from dscsc_core.run.threads import use_cpu_threads
from dscsc_core.training.losses import drh_loss, sch_loss, sem_loss
from dscsc_core.training.model import DSCSCNetwork
from dscsc_core.training.trainer import training_settings


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
    layers = Recipe(args.preset).layers(registry, {"data_root": args.data_root} if args.data_root else {})
    run = prepare(resolve_config(registry, *layers, {"device": args.device}), registry)
    with training_settings(run.device):
        profile(run, args.preset, args.steps)
    print(f"  ({args.threads} CPU threads, device {run.device})")


def profile(run, preset: str, steps: int) -> None:
    device = run.device
    cfg, parts = run.config.training(), run.components
    if parts["augment"].identity:
        raise SystemExit(f"{preset} has no augmentation, so its step is one view without SCH, not the DSCSC "
                         "step profiled here; time it with dscsc run --preset P --pretrain-epochs N --epochs M")
    x = run.data.images.to(device).contiguous(memory_format=torch.channels_last) * cfg.input_scale
    network = DSCSCNetwork(parts["encoder"].build(tuple(x.shape[1:])), cfg.head_hidden, cfg.head_dim)
    network = network.to(device, memory_format=torch.channels_last)
    network.attach_self_expression(x.shape[0], cfg.coef_init_scale, torch.Generator().manual_seed(cfg.seed + 1),
                                   cfg.coef_init, cfg.coef_diagonal)
    optimizer = torch.optim.Adam(network.parameters(), cfg.lr)
    n, totals = x.shape[0], {}

    def lap(name: str, start: float) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        totals[name] = totals.get(name, 0.0) + now - start
        return now

    for step in range(steps + 2):
        if step == 2:
            totals.clear()  # warm-up steps are not counted
        t = time.perf_counter()
        x_aug = parts["augment"](x)
        t = lap("augmentation", t)
        features = network.encoder(torch.cat([x, x_aug]).contiguous(memory_format=torch.channels_last))
        z, z_aug = features[:n], features[n:]
        t = lap("encoder, both views", t)
        coef = network.self_expression.coefficients()
        z_expressed = coef.T @ z
        decoded = network.decoder(torch.cat([z_expressed, z_aug]))
        t = lap("decoder, both views", t)
        drh = drh_loss([(x, decoded[:n]), (x_aug, decoded[n:])])
        h, h_aug = network.head(z), network.head(z_aug)
        sch = sch_loss(h, h_aug, parts["miner"](z, coef), cfg.temperature)
        sem = sem_loss(z, z_expressed, parts["regularizer"](coef), cfg.alpha or 1.0)
        t = lap("L_DRH, head, miner, L_SCH, L_SEM", t)
        optimizer.zero_grad(set_to_none=True)
        (drh + sch + sem).backward()
        t = lap("backward", t)
        optimizer.step()
        lap("Adam", t)
    whole = sum(totals.values())
    print(f"{preset}: N = {n}, {1000 * whole / steps:.1f} ms per step")
    for name, seconds in totals.items():
        print(f"  {name:34s} {1000 * seconds / steps:8.1f} ms  {100 * seconds / whole:5.1f} %")


if __name__ == "__main__":
    main()
