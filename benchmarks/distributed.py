"""Target tokens/s of `trainer fit` on 1 process and under torchrun on N processes (DDP, gloo on
CPU, nccl on CUDA): same data, model, global batch and training time.

On a CPU the processes share the same cores: torchrun gives each one thread (OMP_NUM_THREADS=1),
so 2 processes on 2 cores do the work 1 process does with 2 threads, plus a gradient all-reduce
per step. Expect no speed-up there; the speed-up comes with one GPU (or machine) per process.
"""
from __future__ import annotations

import argparse
import csv
import sys

from common import OUT, PAPER_WORD_2026_11_24, TATOEBA, emit, machine, require_shared, run


def tokens_per_s(out) -> float:
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["tgt_tokens_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=60, help="seconds of training per run")
    ap.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-pairs", type=int, default=20000)
    ap.add_argument("--quick", action="store_true", help="4 s of training, 2,000 pairs")
    args = ap.parse_args()
    require_shared()
    if args.quick:
        args.budget, args.max_pairs = 4, 2000
    common = ["-m", "trainer", "fit", "--data", str(TATOEBA / "train.tsv"), "--min-freq", "2", "--epochs", "1",
              "--max-pairs", str(args.max_pairs), "--time-budget", str(args.budget), "--device", args.device, "--force",
              "--cache-dir", str(OUT / "dist-cache"), *PAPER_WORD_2026_11_24]
    rows = {}
    for n in args.nproc:
        out = OUT / f"dist-{n}"
        launcher = [sys.executable] if n == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc-per-node={n}"]
        log = run(launcher + common + ["--out", str(out)]).stdout
        print(log, file=sys.stderr)
        rows[n] = tokens_per_s(out)
        print(f"{n} process(es): {rows[n]:,.0f} tgt tok/s", file=sys.stderr)
    base = rows[min(rows)]
    emit({"tgt_tokens_per_s": rows, "relative": {n: round(v / base, 2) for n, v in rows.items()},
          "budget_s": args.budget, "device": args.device, "machine": machine()})


if __name__ == "__main__":
    main()
