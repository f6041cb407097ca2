"""A corpus larger than memory would like: the token cache's build speed, `trainer fit`'s peak RSS,
and the second run's start-up with the cache present.

The corpus is generated under artifacts/bench/ (never committed): N pairs, each two different
tatoeba-fra training pairs joined (source to source, target to target), so every pair is unique
and still a translation. Each `trainer fit` runs in its own process (peak RSS from the kernel's
accounting of that child).
"""
from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import time

from common import OUT, PAPER_WORD_2026_11_24, ROOT, TATOEBA, emit, machine, require_shared


def make_corpus(path, n: int) -> int:
    pairs = []
    with open(TATOEBA / "train.tsv", encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2 and cols[0].strip() and cols[1].strip():
                pairs.append((cols[0].strip(), cols[1].strip()))
    m = len(pairs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for k in range(n):  # (k, k * 7919 + 1) mod m: distinct combinations for n < m * m
            a, b = pairs[k % m], pairs[(k // m + 1 + k * 7919) % m]
            f.write(f"{a[0]} {b[0]}\t{a[1]} {b[1]}\n")
    return path.stat().st_size


def fit(corpus, out, budget: float, extra=()) -> dict:
    """Runs `trainer fit` in a child; -> wall seconds to the 'data ...' line (start-up), total
    seconds, its peak RSS, and the tokens/s of its epoch."""
    cmd = [sys.executable, "-m", "trainer", "fit", "--data", str(corpus), "--out", str(out), "--force", "--epochs", "1",
           "--min-freq", "2", "--time-budget", str(budget), *PAPER_WORD_2026_11_24, *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    startup, lines = None, []
    for line in proc.stdout:
        lines.append(line)
        if startup is None and line.startswith("data "):
            startup = time.perf_counter() - start
    proc.wait()
    total = time.perf_counter() - start
    if proc.returncode:
        sys.exit("".join(lines))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far, MB
    with open(out / "metrics.csv") as f:
        row = list(csv.DictReader(f))[-1]
    print("".join(lines), file=sys.stderr)
    return {"startup_s": round(startup, 2), "total_s": round(total, 1), "peak_rss_mb": round(rss),
            "tgt_tokens_per_s": float(row["tgt_tokens_per_s"]), "log": lines[0].strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--budget", type=float, default=60, help="seconds of training in each run")
    ap.add_argument("--quick", action="store_true", help="20,000 pairs, 4 s of training")
    args = ap.parse_args()
    require_shared()
    if args.quick:
        args.pairs, args.budget = 20_000, 4
    sys.path.insert(0, str(ROOT))
    corpus = OUT / f"big-{args.pairs}.tsv"
    size = make_corpus(corpus, args.pairs)
    print(f"corpus {corpus}: {args.pairs:,} pairs, {size / 1e6:.1f} MB", file=sys.stderr)

    # the cache build alone, with 1 and with all worker processes (fresh cache folders)
    from runtime.prepare import TextConfig
    from runtime.tokenizer import Tokenizer
    from trainer import token_cache
    from trainer.data import DataOptions, cached_tokens

    build = {}
    for workers in sorted({1, token_cache.default_workers()}):
        folder = OUT / f"big-cache-w{workers}"
        subprocess.run(["rm", "-rf", str(folder)], check=True)
        start = time.perf_counter()
        cache = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), folder, workers)
        seconds = time.perf_counter() - start
        build[workers] = {"seconds": round(seconds, 1), "pairs_per_s": round(len(cache) / seconds),
                          "cache_mb": round(sum(p.stat().st_size for p in cache.folder.iterdir()) / 1e6, 1)}
        print(f"cache build, {workers} worker(s): {build[workers]}", file=sys.stderr)

    out = OUT / "big-fit"
    cache_dir = ["--cache-dir", str(OUT / "big-fit-cache")]
    subprocess.run(["rm", "-rf", str(OUT / "big-fit-cache")], check=True)
    first = fit(corpus, out, args.budget, cache_dir)   # builds the cache
    second = fit(corpus, out, args.budget, cache_dir)  # finds it
    print(f"first run (builds the cache): {first}\nsecond run (cache present): {second}")
    emit({"pairs": args.pairs, "corpus_mb": round(size / 1e6, 1), "cache_build": build, "first_fit": first,
          "second_fit": second, "budget_s": args.budget, "machine": machine()})


if __name__ == "__main__":
    main()
