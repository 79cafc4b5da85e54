"""The device a process trains on, and joining torchrun's process group."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` is CUDA when present, else CPU; with several GPUs, the process's own one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and torch.cuda.device_count() > 1:
        return torch.device("cuda", local_rank)
    return torch.device(name)


def distributed(device_name: str) -> tuple[int, int, torch.device]:
    """``(rank, world size, device)``; joins torchrun's process group when launched by it
    (NCCL on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = resolve_device(device_name, local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device
