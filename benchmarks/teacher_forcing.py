"""Teacher forcing 1.0 (fast whole-sequence path) vs 0.5 (the reference's per-step loop): BLEU on
tatoeba-fra test after the same wall-clock training budget. Picks `trainer fit`'s default."""
from __future__ import annotations

import argparse
import re
import sys

from common import OUT, PAPER_WORD_2026_11_24, TATOEBA, emit, machine, require_shared, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=240, help="training seconds per ratio")
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="4 s per ratio on 2,000 pairs, 100 test pairs")
    args = ap.parse_args()
    require_shared()
    test_pairs = []
    if args.quick:
        args.budget, args.max_pairs, test_pairs = 4, 2000, ["--max-pairs", "100"]
    results = {}
    for ratio in (1.0, 0.5):
        out = OUT / (f"tf-quick-{ratio}" if args.quick else f"tf-{ratio}")
        cmd = [sys.executable, "-m", "trainer", "fit", "--data", str(TATOEBA / "train.tsv"), "--valid",
               str(TATOEBA / "valid.tsv"), "--min-freq", "2", "--epochs", "1000", "--patience", "1000",
               "--time-budget", str(args.budget), "--teacher-forcing", str(ratio), "--out", str(out), "--force",
               *PAPER_WORD_2026_11_24]
        if args.max_pairs:
            cmd += ["--max-pairs", str(args.max_pairs)]
        log = run(cmd).stdout
        print(log, file=sys.stderr)
        tok_s = [float(x) for x in re.findall(r"(\d+) tgt tok/s", log)]
        ev = run([sys.executable, "-m", "trainer", "evaluate", str(out / "checkpoint.pth"), "--data",
                  str(TATOEBA / "test.tsv"), "--samples", "0", *test_pairs]).stdout
        results[str(ratio)] = {
            "bleu": float(re.search(r"BLEU = ([\d.]+)", ev).group(1)),
            "chrf": float(re.search(r"chrF = ([\d.]+)", ev).group(1)),
            "valid_loss": float(re.search(r"loss ([\d.]+)", ev).group(1)),
            "tgt_tokens_per_s": round(sum(tok_s) / max(len(tok_s), 1)),
            "epochs": len(tok_s),
        }
    emit({"budget_s": args.budget, "max_pairs": args.max_pairs, "results": results, "machine": machine()})


if __name__ == "__main__":
    main()
