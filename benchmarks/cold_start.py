"""Cold start of `runtime translate "hello"`: process start to output, median of N runs, for the
current tree and, to compare, other source trees (e.g. a `git worktree` of an earlier commit), each
on --model or on a folder of its own (`--tree TREE=FOLDER`: one its code reads, e.g. exported by it),
interleaved so machine drift hits all alike.

Every tree starts from compiled bytecode, as an installed package does (pip compiles it): each gets
a bytecode folder of its own (PYTHONPYCACHEPREFIX), filled by one untimed start before the timed
ones. Otherwise a tree without __pycache__ (a fresh `git worktree`, or any tree where
PYTHONDONTWRITEBYTECODE is set) compiles its modules at every start: ~30 ms more on this VM, which
once made the tree before look slower than it is (docs/benchmarks.md).

    python benchmarks/cold_start.py --model artifacts/onnx --tree ../before=../before/artifacts/onnx
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import ROOT, emit, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(ROOT / "artifacts" / "onnx"))
    ap.add_argument("--tree", action="append", default=[],
                    help="another source tree to time, TREE or TREE=FOLDER (repeatable)")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="3 runs each")
    args = ap.parse_args()
    if args.quick:
        args.repeat = 3
    trees = {str(ROOT): args.model}
    for spec in args.tree:
        tree, _, model = spec.partition("=")
        trees[tree] = model or args.model
    times = {t: [] for t in trees}
    with tempfile.TemporaryDirectory(prefix="cold-start-bytecode-") as bytecode:
        envs = {}
        for n, tree in enumerate(trees):
            envs[tree] = dict(os.environ, PYTHONPATH=tree, PYTHONPYCACHEPREFIX=os.path.join(bytecode, str(n)))
            envs[tree].pop("PYTHONDONTWRITEBYTECODE", None)
        for run in range(args.repeat + 1):  # run 0 compiles each tree's bytecode and is not timed
            for tree, model in trees.items():
                start = time.perf_counter()
                r = subprocess.run([sys.executable, "-m", "runtime", "translate", "--model", model, "hello"],
                                   env=envs[tree], cwd=tree, capture_output=True, text=True)
                if run:
                    times[tree].append(time.perf_counter() - start)
                if r.returncode:
                    sys.exit(f"{tree}: {r.stderr}")
    med = {t: round(statistics.median(v), 3) for t, v in times.items()}
    for t, v in times.items():
        print(f"{t}: median {med[t]:.3f} s (min {min(v):.3f}, max {max(v):.3f}) over {len(v)} runs", file=sys.stderr)
    emit({"cold_start_s": med, "models": trees, "repeat": args.repeat, "machine": machine()})


if __name__ == "__main__":
    main()
