"""Cold start of `runtime translate "hello"`: process start to output, median of N runs, for the
current tree and, to compare, other source trees (e.g. a `git worktree` of an earlier commit)
on the same model folder, interleaved so machine drift hits both alike."""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from common import ROOT, emit, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(ROOT / "artifacts" / "onnx"))
    ap.add_argument("--tree", action="append", default=[], help="another source tree to time (repeatable)")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="3 runs each")
    args = ap.parse_args()
    if args.quick:
        args.repeat = 3
    trees = [str(ROOT)] + args.tree
    times = {t: [] for t in trees}
    for _ in range(args.repeat):
        for tree in trees:
            env = dict(os.environ, PYTHONPATH=tree)
            start = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "runtime", "translate", "--model", args.model, "hello"], env=env,
                               cwd=tree, capture_output=True, text=True)
            times[tree].append(time.perf_counter() - start)
            if r.returncode:
                sys.exit(f"{tree}: {r.stderr}")
    med = {t: round(statistics.median(v), 3) for t, v in times.items()}
    for t, v in times.items():
        print(f"{t}: median {med[t]:.3f} s (min {min(v):.3f}, max {max(v):.3f}) over {len(v)} runs", file=sys.stderr)
    emit({"cold_start_s": med, "model": args.model, "repeat": args.repeat, "machine": machine()})


if __name__ == "__main__":
    main()
