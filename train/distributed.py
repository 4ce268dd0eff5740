"""torchrun helpers: one process group per run, gloo on CPU, nccl on CUDA."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sagc.core.devices import usable_device

__all__ = [
    "training_device",
    "DistInfo",
    "init_distributed",
    "shutdown_distributed",
    "barrier",
    "average_gradients",
    "replicas_identical",
]


@dataclass(frozen=True, slots=True)
class DistInfo:
    """Where this process stands: rank, world size, its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def training_device(name: str) -> torch.device:
    """The config's ``device`` as a torch device that exists here, or one clear error."""
    return usable_device(name, option="config device", cpu="--set device=cpu")


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group if launched by torchrun, else a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, device)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, device)


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a world of one)."""
    if info.world > 1:
        dist.barrier()


def shutdown_distributed(info: DistInfo) -> None:
    """Leave the process group."""
    if info.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(module: torch.nn.Module, info: DistInfo) -> None:
    """All-reduce and average ``module``'s gradients (for modules trained outside DDP)."""
    if info.world <= 1:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= info.world


def replicas_identical(module: torch.nn.Module, info: DistInfo) -> bool:
    """True when every rank holds bit-identical parameters (a check at the end of DDP runs)."""
    if info.world <= 1:
        return True
    flat = torch.cat([p.detach().flatten().double() for p in module.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(info.world)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])
