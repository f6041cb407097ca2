"""One process or many: torchrun's environment, the process group, and the few collectives the
training loop needs. Without torchrun (no WORLD_SIZE in the environment) everything here is a
no-op and `trainer fit` is the plain single process it always was."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# how long a collective may wait for a peer before the run fails (a dead peer is noticed at once
# by gloo and NCCL; this bounds a hung one)
TIMEOUT = timedelta(minutes=10)


class DistributedError(Exception):
    """Another process of the run failed; the message is one line."""


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0 prints, shows progress and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        """Sums a few numbers over all processes (identity in a single process)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        _collective(dist.all_reduce, t)
        return t.tolist()

    def barrier(self) -> None:
        if self.active:
            _collective(dist.barrier)


def _collective(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # gloo/NCCL raise RuntimeError or DistBackendError when a peer is gone
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DistributedError(f"another process of the distributed run stopped or is unreachable ({first})") from None


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available to torch")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(name)


def setup(device_name: str) -> tuple[Dist, torch.device]:
    """Joins torchrun's process group when launched by torchrun (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), pick_device(device_name)
    d = Dist(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")), world=world)
    device = pick_device(device_name, d.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return d, device


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()
