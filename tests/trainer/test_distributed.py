"""torchrun + DistributedDataParallel on CPU (gloo, 2 processes, tiny models)."""
import csv
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import PY, ROOT, run_env

# dropout 0: the only randomness left is the batch order and the augmentation draws, which are the same
# for any world size (augmented more than by default, the target-changing title modifier included)
OPTIONS = dict(max_pairs=600, emb_dim=16, hidden_dim=32, layers=2, dropout=0.0, epochs=2, batch_size=32,
               batch_tokens=256, seed=3, patience=100,  # batches by size, as by default
               augment="lowercase=0.4,strip_punct=0.5,title=0.2")
HERE = Path(__file__).parent
pytestmark = pytest.mark.slow  # every test starts torchrun or a training process


def _env(**extra):
    env = run_env()
    env.update(OMP_NUM_THREADS="1", **extra)  # as torchrun sets it per process: same arithmetic both ways
    return env


def torchrun(nproc: int, *args, **kw):
    cmd = [PY, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, **kw)


def _steps(out: Path) -> list[tuple[int, int, float]]:
    with open(out / "steps.csv") as f:
        return [(int(r["epoch"]), int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out, record = tmp_path_factory.mktemp("ddp"), tmp_path_factory.mktemp("record")
    r = torchrun(2, str(HERE / "ddp_run.py"), json.dumps({**OPTIONS, "out": str(out)}), str(record), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, record, r


def test_every_rank_holds_identical_weights(two_process_run):
    _, record, _ = two_process_run
    w0, w1 = (torch.load(record / f"weights-rank{r}.pt", weights_only=True) for r in (0, 1))
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)


def test_step_losses_equal_one_process_fed_the_same_global_batches(two_process_run, tmp_path):
    out2, _, _ = two_process_run
    r = subprocess.run([PY, "-m", "trainer", "fit", *_flags(OPTIONS), "--out", str(tmp_path)], capture_output=True,
                       text=True, env=_env(), cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    one, two = _steps(tmp_path), _steps(out2)
    assert len(one) == len(two) >= 20 and [s[:2] for s in one] == [s[:2] for s in two]
    assert max(abs(a[2] - b[2]) for a, b in zip(one, two)) < 1e-5
    # and the checkpoints agree
    a = torch.load(tmp_path / "last.pth", weights_only=True)["model_state"]
    b = torch.load(out2 / "last.pth", weights_only=True)["model_state"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4


def test_only_rank_0_writes(two_process_run):
    out, record, r = two_process_run
    assert json.loads((record / "writes-rank1.json").read_text()) == []
    assert "atomic_save" in json.loads((record / "writes-rank0.json").read_text())
    assert sorted(p.name for p in out.iterdir() if p.name != "cache") == [
        "checkpoint.pth", "last.pth", "loss_curve.png", "metrics.csv", "steps.csv"]


def _flags(options: dict) -> list[str]:
    return [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]


@pytest.mark.parametrize("first,then", [(2, 1), (1, 2)])
def test_resume_across_world_sizes(tmp_path, first, then):
    """A run of 3 epochs stopped after 2 and resumed with another number of processes ends with the
    same losses as the run never stopped."""
    def run(nproc, out, epochs, *extra):
        args = ["-m", "trainer", "fit", *_flags({**OPTIONS, "epochs": epochs}), "--out", str(out), *extra]
        if nproc == 1:
            r = subprocess.run([PY, *args], capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
        else:
            r = torchrun(nproc, *args, timeout=300)
            # only rank 0 prints: one line per epoch, saying how many processes share the work
            epoch_lines = re.findall(r"^epoch +\d+ ", r.stdout, re.M)
            assert "x 2 processes" in r.stdout and len(epoch_lines) == (1 if extra else epochs), r.stdout
        assert r.returncode == 0, r.stdout + r.stderr

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run(first, straight, 3)
    run(first, resumed, 2)
    run(then, resumed, 3, "--resume")
    a, b = _steps(straight), _steps(resumed)
    assert [s[:2] for s in a] == [s[:2] for s in b] and max(abs(x[2] - y[2]) for x, y in zip(a, b)) < 1e-5


def test_time_budget_stops_every_process_at_the_same_step(tmp_path):
    """Each process reads its own clock; the decision is shared, so no process waits in a
    collective for a peer that already stopped (that would hang until the timeout)."""
    out, record = tmp_path / "out", tmp_path / "record"
    record.mkdir()
    options = {**OPTIONS, "epochs": 200, "max_pairs": 3000, "time_budget": 2, "out": str(out)}
    start = time.time()
    r = torchrun(2, str(HERE / "ddp_run.py"), json.dumps(options), str(record), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert time.time() - start < 60
    steps = _steps(out)
    assert 0 < len(steps) < 200 * 47  # stopped long before 200 epochs of 47 steps
    # both processes took exactly the steps rank 0 logged: their weights are the same
    a, b = (torch.load(record / f"weights-rank{k}.pt") for k in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_a_killed_rank_ends_the_run_with_a_clear_error(tmp_path):
    args = ["-m", "trainer", "fit", *_flags({**OPTIONS, "epochs": 50, "max_pairs": 3000}), "--out", str(tmp_path)]
    # torchrun checks its workers every 5 s here (0.1 s by default): the survivor notices the dead peer at its
    # next collective, within a step, and must say so itself before torchrun would stop it
    proc = subprocess.Popen([PY, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "--monitor-interval", "5", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    deadline = time.time() + 120
    # the first epoch's files are all written (loss_curve.png last): rank 0 is back in training steps, with a
    # collective in each (not in matplotlib's first import, which builds its font cache on a fresh machine
    # and can take longer than torchrun's 5 s)
    while time.time() < deadline and not (tmp_path / "loss_curve.png").exists():
        time.sleep(0.1)
    time.sleep(0.5)
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    # rank 1 is the second worker torchrun started
    os.kill(sorted(workers)[1], signal.SIGKILL)
    start = time.time()
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode != 0 and time.time() - start < 90
    assert "Traceback" not in stdout  # (torchrun prints its own traceback on stderr for the failed rank)
    # the survivor says why in one line
    said = [line for line in stderr.splitlines() if "another process of the distributed run stopped" in line]
    assert len(said) == 1 and said[0].startswith("Error: process 0: "), stderr


def test_single_process_without_torchrun_is_unchanged(tiny_run):
    """No WORLD_SIZE: no process group is created (the plain fixture run is a single process)."""
    import torch.distributed as dist

    assert not dist.is_initialized() and (tiny_run / "steps.csv").exists()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("env, words", [
    (dict(WORLD_SIZE="abc"), "WORLD_SIZE='abc' is not an integer >= 1"),
    (dict(WORLD_SIZE="2", RANK="5", LOCAL_RANK="0"), "RANK='5' is not 0..1"),
    (dict(WORLD_SIZE="2", RANK="0"), "LOCAL_RANK is not"),
    (dict(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0"), "MASTER_ADDR (the first process's host) is not"),
    (dict(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="70000"),
     "MASTER_PORT='70000' is not 1..65535"),
    (dict(RANK="1"), "RANK is set without WORLD_SIZE"),
    # all well-formed, but the other process never comes: the rendezvous times out with a message
    (dict(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}"),
     "the 2 processes did not all meet at MASTER_ADDR:MASTER_PORT 127.0.0.1:{port} within 3 s"),
    (dict(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}"),
     "the 2 processes did not all meet"),
])
def test_distributed_variables_set_by_hand_are_checked(tmp_path, env, words):
    """Without torchrun, its variables set by hand, missing or malformed: one line naming the variable
    (and what torchrun would have set), before anything waits on them; a rendezvous that cannot
    complete ends in a message (here after 3 s), never hangs."""
    port = str(_free_port())
    env = {k: v.format(port=port) for k, v in env.items()}
    full = {k: v for k, v in run_env().items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    r = subprocess.run([PY, "-m", "trainer", "fit", *_flags({**OPTIONS, "epochs": 1}), "--out", str(tmp_path)],
                       capture_output=True, text=True, env={**full, **env, "SEQ2SEQ_RENDEZVOUS_TIMEOUT": "3"}, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert words.format(port=port) in r.stderr, r.stderr
