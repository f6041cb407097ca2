"""One process or many: torchrun's environment, the process group, and the few collectives the
training loop needs. Without torchrun (no WORLD_SIZE in the environment) everything here is a
no-op and `trainer fit` is the plain single process it always was."""
from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# how long a collective may wait for a peer before the run fails (a dead peer is noticed at once
# by gloo and NCCL; this bounds a hung one, and the first process building a large token cache)
TIMEOUT = timedelta(minutes=10)
# how long the processes may take to find each other at the start (torchrun starts them together)
RENDEZVOUS_TIMEOUT = timedelta(seconds=float(os.environ.get("SEQ2SEQ_RENDEZVOUS_TIMEOUT", "120")))
TORCHRUN_HINT = "torchrun sets these for each process it starts (torchrun --nproc-per-node N -m trainer fit ...); " \
                "unset them to train in one process"


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
        raise _peer_gone(e) from None


def _peer_gone(e: BaseException) -> DistributedError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    return DistributedError(f"another process of the distributed run stopped or is unreachable ({first})")


def _is_peer_failure(e: BaseException) -> bool:
    """An error of the communication itself: torch's DistError family (NCCL, stores, networks) or
    gloo's transport (a plain RuntimeError naming gloo, e.g. "Connection reset by peer")."""
    return isinstance(e, dist.DistError) or (isinstance(e, RuntimeError) and "gloo" in str(e))


@contextlib.contextmanager
def peer_failures_reported(d: Dist):
    """Around the training loop of a distributed run: a peer that dies is noticed by whichever
    collective comes next, often DDP's gradient all-reduce inside backward(), far from the few
    collectives `Dist` wraps itself; any of them becomes the same one-line DistributedError."""
    if not d.active:
        yield
        return
    try:
        yield
    except DistributedError:
        raise
    except Exception as e:
        if not _is_peer_failure(e):
            raise
        raise _peer_gone(e) from None


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available to torch")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(name)


def _int_env(name: str, low: int, high: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        raise DistributedError(f"WORLD_SIZE is set but {name} is not: {TORCHRUN_HINT}")
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        span = f"{low}..{high}" if high is not None else f"an integer >= {low}"
        raise DistributedError(f"{name}={value!r} is not {span}: {TORCHRUN_HINT}")
    return number


def from_environment() -> tuple[Dist, str, int]:
    """torchrun's variables, checked before anything waits on them -> (Dist, master address, port).
    A one-process run has no WORLD_SIZE (or 1)."""
    if "WORLD_SIZE" not in os.environ:
        stray = [v for v in ("RANK", "LOCAL_RANK") if v in os.environ]
        if stray:
            raise DistributedError(f"{stray[0]} is set without WORLD_SIZE: {TORCHRUN_HINT}")
        return Dist(), "", 0
    world = _int_env("WORLD_SIZE", 1)
    if world == 1:
        return Dist(), "", 0
    rank = _int_env("RANK", 0, world - 1)
    local_rank = _int_env("LOCAL_RANK", 0, world - 1)
    addr = os.environ.get("MASTER_ADDR", "")
    if not addr.strip():
        raise DistributedError(f"WORLD_SIZE is set but MASTER_ADDR (the first process's host) is not: {TORCHRUN_HINT}")
    return Dist(rank=rank, local_rank=local_rank, world=world), addr, _int_env("MASTER_PORT", 1, 65535)


def _store(d: Dist, addr: str, port: int):
    """The rendezvous store as torch's env:// creates it (torchrun's agent hosts it, or else the
    first process), but with a rendezvous timeout of its own: a process whose peers never come
    fails in RENDEZVOUS_TIMEOUT, not in the collectives' TIMEOUT."""
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    try:
        return dist.TCPStore(addr, port, d.world, is_master=d.rank == 0 and not agent, timeout=RENDEZVOUS_TIMEOUT,
                             **({} if agent else {"multi_tenant": True}))
    except Exception as e:  # RuntimeError / DistNetworkError / DistStoreError
        raise DistributedError(_rendezvous_failure(d, addr, port, e)) from None


def _rendezvous_failure(d: Dist, addr: str, port: int, e: Exception) -> str:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
    return (f"the {d.world} processes did not all meet at MASTER_ADDR:MASTER_PORT {addr}:{port} within "
            f"{RENDEZVOUS_TIMEOUT.total_seconds():g} s ({first}); start every process (torchrun does), "
            "or unset WORLD_SIZE to train in one process")


@contextlib.contextmanager
def _quiet_stderr():
    """torch's TCPStore logs each connection retry from C++ straight to file descriptor 2; while the
    processes meet that is noise before our own one-line message, so it goes to a file instead."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def setup(device_name: str) -> tuple[Dist, torch.device]:
    """Joins torchrun's process group when launched by torchrun (nccl on CUDA, gloo on CPU)."""
    d, addr, port = from_environment()
    if not d.active:
        return d, pick_device(device_name)
    device = pick_device(device_name, d.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        with _quiet_stderr():
            store = _store(d, addr, port)
            try:
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=store, rank=d.rank,
                                        world_size=d.world, timeout=TIMEOUT)
            except Exception as e:
                raise DistributedError(_rendezvous_failure(d, addr, port, e)) from None
    return d, device


def teardown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()
