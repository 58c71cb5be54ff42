"""A run trained by several processes: how many, what they need, and the process group they train in.

``dscsc run --nproc N`` starts them through torchrun, or a user runs ``torchrun --nproc-per-node N -m dscsc_cli
run ...``; torchrun tells each process its rank and how many there are in environment variables, and each joins
the group from them: gloo on the CPU, nccl with CUDA, where each process trains on its own GPU. The trainer does
the rest (``dscsc_core.training.distributed``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from dscsc_core.errors import ConfigError, DeviceError
from dscsc_core.training.distributed import autograd_all_gather
from dscsc_core.training.supported_coef import stage2_batches


def launched() -> bool:
    """Whether torchrun (or a launcher like it) started this process as one of a group."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def leads_launch() -> bool:
    """Whether this process writes the run's outputs and reports: the only one, or the first torchrun started."""
    return not launched() or os.environ["RANK"] == "0"


def process_count(config) -> int:
    """The processes that train the run: the ones torchrun started, when it started this one; else ``nproc``."""
    if not launched():
        return config.nproc
    count = int(os.environ["WORLD_SIZE"])
    if config.nproc not in (1, count):
        raise ConfigError(f"{{nproc}} is {config.nproc} but torchrun started {count} processes; leave {{nproc}} out "
                          "under torchrun", nproc="nproc")
    return count


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def _backend_available(name: str) -> bool:
    if not dist.is_available():
        return False
    return dist.is_nccl_available() if name == "nccl" else dist.is_gloo_available()


def process_device(device: torch.device, count: int) -> torch.device:
    """This process's device: with CUDA and several processes, its own GPU (torchrun's LOCAL_RANK)."""
    if count == 1 or device.type != "cuda":
        return device
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def check_processes(config, device: torch.device, n_samples: int, count: int) -> None:
    """What training in ``count`` processes needs, raised before anything trains."""
    if count == 1:
        return
    if config.coef_support == 0 or config.stage2_batch_size == 0:
        raise ConfigError(f"training in {count} processes shares Stage II's mini-batches among them, which only the "
                          "scalable path has: set {support} (e.g. 50) and {batch} (e.g. 1000)",
                          support="coef_support", batch="stage2_batch_size")
    name = backend(device)
    if not _backend_available(name):
        raise DeviceError(f"training in {count} processes on {device.type} needs torch.distributed's {name} backend, "
                          "which this torch build lacks; set {nproc} to 1", nproc="nproc")
    if autograd_all_gather() is None:
        raise DeviceError(f"training in {count} processes needs torch's all-gather with gradient, which torch "
                          f"{torch.__version__} lacks; update torch, or set {{nproc}} to 1", nproc="nproc")
    if device.type == "cuda":
        _check_gpus(device, count)
    smallest = min(stage2_batches(n_samples, config.stage2_batch_size))
    if smallest < count:
        raise ConfigError(f"{{batch}} {config.stage2_batch_size} gives Stage II mini-batches of {smallest} samples, "
                          f"fewer than the {count} processes that share each one; set {{batch}} to at least "
                          f"{count}", batch="stage2_batch_size")
    size = config.pretrain_batch_size
    stage1_smallest = n_samples if size == 0 or size >= n_samples else (n_samples % size or size)
    if stage1_smallest < count:
        raise ConfigError(f"{{batch}} {size} leaves a Stage I mini-batch of {stage1_smallest} samples, fewer than "
                          f"the {count} processes that share each one; choose a {{batch}} that divides the "
                          f"{n_samples} samples, or leaves at least {count}", batch="pretrain_batch_size")


def _check_gpus(device: torch.device, count: int) -> None:
    gpus = torch.cuda.device_count()
    if count > gpus:
        raise DeviceError(f"{count} processes on CUDA take a GPU each, and this machine has {gpus}; set {{nproc}} to "
                          f"at most {gpus}", nproc="nproc")
    if device.index is not None:
        raise DeviceError(f"{count} processes take a GPU each (cuda:0 to cuda:{count - 1}); set {{device}} to cuda, "
                          f"not {device}", device="device")


@contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """This process in its group, when torchrun started it as one of several and no group exists yet; the group
    is left at the end."""
    if not launched() or int(os.environ["WORLD_SIZE"]) == 1 or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend(device), **({"device_id": device} if device.type == "cuda" else {}))
    try:
        yield
        # All leave together: a process that tore the group down while another still held it ended now and
        # then in "terminate called without an active exception" (gloo, 2 CPU processes).
        dist.barrier()
    finally:
        dist.destroy_process_group()
