"""torchrun/DDP plumbing: process group setup, rank-0 helpers and collective decisions.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs as one
process. Backend: nccl on CUDA, gloo on CPU. Only rank 0 writes files or prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from edge_runtime.errors import ConfigError


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu)")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r}: expected cpu, cuda or auto")
    return torch.device(name)


def init(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group when launched by torchrun; else single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_floats(info: DistInfo, values: list[float], device: torch.device) -> list[float]:
    """Rank 0's values on every rank (so all ranks take the same lr and stop decision)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.tolist()


def launched_as_main() -> bool:
    """Whether this process is rank 0 (or not under torchrun), before or after :func:`init`."""
    return int(os.environ.get("RANK", "0")) == 0


def mean_float(info: DistInfo, value: float, device: torch.device) -> float:
    """The mean of ``value`` over the ranks (e.g. each rank's training loss on its shard)."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / info.world
