"""Training in several processes (``torch.distributed``, started by torchrun): which process this is, its share
of a mini-batch, and the few collectives a step needs beside the gradient averaging of torch's own
DistributedDataParallel.

Every process holds all the data and the same seed, so all draw the same shuffles; each computes the losses of
its contiguous share of every mini-batch, and DDP averages the parameters' gradients. Alone (no process group,
or a group of one) nothing here communicates and the trainer computes exactly what it always did.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

# The memory bank (a buffer) is kept the same in every process by the step itself: DDP need not broadcast the
# buffers before every forward (it still does once, when it wraps the network). Newer torch renames the flag.
_NO_BUFFER_SYNC_AT_FORWARD = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
    else {"broadcast_buffers": False})


def autograd_all_gather() -> Callable | None:
    """torch's all-gather that carries the gradient back (what the deprecation of
    torch.distributed.nn.functional.all_gather points to); None in a torch too old to have it."""
    try:
        from torch.distributed._functional_collectives import all_gather_single_autograd
    except ImportError:
        return None
    return all_gather_single_autograd


@dataclass(frozen=True)
class Processes:
    """This process's place among the processes that train one run."""

    rank: int = 0
    count: int = 1

    @classmethod
    def current(cls) -> Processes:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def several(self) -> bool:
        return self.count > 1

    @property
    def leads(self) -> bool:
        """The process that writes a run's outputs (checkpoints, caches, results)."""
        return self.rank == 0

    def share_sizes(self, batch_size: int) -> list[int]:
        """Each process's number of a batch's rows, in rank order, as equal as can be."""
        base, extra = divmod(batch_size, self.count)
        return [base + (rank < extra) for rank in range(self.count)]

    def share(self, batch_size: int) -> slice | None:
        """This process's contiguous rows of a batch of ``batch_size``; None alone (all of them)."""
        if not self.several:
            return None
        sizes = self.share_sizes(batch_size)
        start = sum(sizes[:self.rank])
        return slice(start, start + sizes[self.rank])

    def gather(self, share: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Every process's ``share`` (rows) in rank order: the whole batch's. The gradient that flows into a row
        goes back to the process that computed it, summed over the processes that used it. Shares may differ by
        a row; all-gather wants equal ones, so each is padded to the widest, and the padding dropped."""
        sizes = self.share_sizes(batch_size)
        widest = sizes[0]
        padded = F.pad(share, (0, 0) * (share.dim() - 1) + (0, widest - share.shape[0]))
        gathered = autograd_all_gather()(padded, 0, dist.group.WORLD)
        kept = torch.cat([torch.arange(size, device=share.device) + rank * widest for rank, size in enumerate(sizes)])
        return gathered[kept]

    def summed(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each value summed over the processes, without gradient, in one all-reduce; alone, the values."""
        if not self.several:
            return values
        stacked = torch.stack([value.detach() for value in values.values()])
        dist.all_reduce(stacked)
        return dict(zip(values, stacked.unbind(), strict=True))

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` holds in any process: what all of them then act on together (a stop request)."""
        if not self.several:
            return flag
        raised = torch.tensor(float(flag), device=device)
        dist.all_reduce(raised, op=dist.ReduceOp.MAX)
        return bool(raised)

    def parallel(self, network: nn.Module, forward: Callable, device: torch.device) -> Callable:
        """``forward`` (a step's losses from ``network``) with ``network``'s gradients averaged over the processes
        by DistributedDataParallel; alone, ``forward`` itself."""
        if not self.several:
            return forward
        return nn.parallel.DistributedDataParallel(
            _Forward(network, forward), device_ids=[device.index] if device.type == "cuda" else None,
            **_NO_BUFFER_SYNC_AT_FORWARD,
            # The same parameters take part in every step (the head only where SCH is weighted): DDP learns which
            # in the first step and skips the others' gradients, without searching the graph at every step.
            static_graph=True)


class _Forward(nn.Module):
    """``forward`` over ``network``'s parameters as one module: DDP hooks a module's forward, and a step calls
    several parts of the network (encoder, self-expression, decoder, head)."""

    def __init__(self, network: nn.Module, forward: Callable):
        super().__init__()
        self.network = network
        self.losses = forward

    def forward(self, *inputs):
        return self.losses(*inputs)
