"""Seeding, devices and the data-parallel context under torchrun (one process is a world
of one)."""
from __future__ import annotations

import atexit
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger("training.trainer")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly one-process) data-parallel run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices) so that runs repeat.

    ``deterministic`` also selects deterministic torch algorithms (cuDNN included); ops
    without one warn instead of failing.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def distributed_context(device: str | torch.device | None = None) -> DistContext:
    """Rank, world size and device from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    Starts the process group once when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU). The
    device defaults to cuda:LOCAL_RANK when CUDA is available, else the CPU.
    """
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
    else:
        world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local)
        if device.index >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} asks for {device} but only "
                               f"{torch.cuda.device_count()} CUDA devices are visible")
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        if not dist.is_available():
            raise RuntimeError(f"WORLD_SIZE={world} but this torch build has no torch.distributed")
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, **kwargs)
        atexit.register(shutdown_distributed, barrier=False)
        log.info("rank %d of %d on %s (%s)", rank, world, device, backend)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=device)


def shutdown_distributed(barrier: bool = True) -> None:
    """Destroy the process group if one is up. Call it at the end of a distributed script:
    the barrier lets no rank close its connections while a peer still uses them. (At exit,
    distributed_context's fallback destroys the group without a barrier, so that a failed
    rank never waits for peers that will not come.)"""
    if dist.is_available() and dist.is_initialized():
        try:
            if barrier:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _all_reduce(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _check_same_on_all_ranks(what: dict, ctx: DistContext) -> None:
    seen: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(seen, what)
    for r, other in enumerate(seen):
        if other != what:
            diff = sorted(k for k in what if other.get(k) != what.get(k))
            raise ValueError(f"rank {ctx.rank} and rank {r} differ in {diff}: every rank "
                             "must train the same config on the same data")
