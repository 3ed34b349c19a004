"""Several processes, on one machine or many, through torchrun (PyTorch's own launcher).

``torchrun --nproc_per_node N -m ganlab run RECIPE`` starts N processes with RANK and
WORLD_SIZE set; each joins one process group (NCCL on GPUs, gloo on CPUs), takes its own
share of every batch of the seeded data order, and averages its gradients with the others
before every optimizer step (data parallelism, as DistributedDataParallel does). Rank 0 alone
writes the run folder, logs and checkpoints. A single process (no torchrun) does none of this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ganlab.errors import GanlabError


@dataclass(frozen=True)
class Group:
    """This process's place among the processes of a run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def join(device_name: str) -> Group:
    """Join the process group torchrun describes in the environment (or run alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        gpu = device_name != "cpu" and torch.cuda.is_available()
        if gpu:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if gpu else "gloo")
    return Group(rank, world, local_rank)


def leave(group: Group) -> None:
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The training RNG seed of one rank: ranks draw different latent vectors."""
    return int(np.random.SeedSequence([seed, rank, 1]).generate_state(1, np.uint32)[0])


def average_gradients(module: nn.Module, group: Group) -> None:
    """Average the gradients of ``module`` over the processes, in one flat all-reduce."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not group.distributed or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= group.world
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def mean_over_ranks(values: torch.Tensor, group: Group) -> torch.Tensor:
    """The element-wise mean of a tensor over the processes."""
    if group.distributed:
        values = values.clone()
        dist.all_reduce(values)
        values /= group.world
    return values


def max_over_ranks(values: torch.Tensor, group: Group) -> torch.Tensor:
    """The element-wise maximum of a CPU tensor over the processes (gloo and NCCL alike)."""
    if group.distributed:
        values = values.clone()
        if dist.get_backend() == "nccl":
            values = values.cuda()
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values.cpu()


def from_main(obj: Any, group: Group) -> Any:
    """Rank 0's ``obj`` on every process (e.g. the run folder it created)."""
    if not group.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def gather_from_ranks(obj: Any, group: Group) -> list[Any]:
    """Every process's ``obj``, as a list by rank (on every process)."""
    if not group.distributed:
        return [obj]
    found: list[Any] = [None] * group.world
    dist.all_gather_object(found, obj)
    return found


def check_supported(precision: str, group: Group) -> None:
    """Refuse what several processes cannot train correctly, before anything is built."""
    if group.distributed and precision == "fp16":
        # Each process's GradScaler finds overflows in its own gradients only: one process
        # would skip a step the others take, and their weights would drift apart for good.
        # Agreeing on the skip (an all-reduce of the scalers' overflow flags, then one shared
        # scale) is not written yet: the CPU processes the tests run (gloo) never overflow in
        # float16, so it could not be tested here.
        raise GanlabError(
            f"train.precision fp16 with {group.world} processes: each process's gradient "
            "scaler would skip the steps its own gradients overflow on while the others take "
            "them, so the processes' weights would drift apart. Use bf16 (the same speed on "
            "GPUs that have it, and no scaler) or fp32; fp16 trains in one process."
        )
