"""Word vs SentencePiece vocabularies at a fixed training budget: BLEU and chrF (sacrebleu,
case-insensitive and cased) on tatoeba-fra test and multi30k test_2016_flickr, decoding speed
through the runtime (tokenization included) and model-folder size.

    python benchmarks/vocabulary.py --budget 300 --runs "tatoeba en-fr=word,bpe:8000,unigram:8000"

Each run: `trainer fit --time-budget BUDGET` (the paper's model, default recipe), export fp32,
translate the test set with the runtime (greedy).
"""
from __future__ import annotations

import argparse
import sys
import time

from common import OUT, PAPER_SUBWORD_2026_11_26, TASKS, emit, machine, require_shared, run

DEFAULT_RUNS = ("tatoeba en-fr=word,bpe:8000,unigram:8000,bpe:4000,bpe:16000;"
                "multi30k de-en=word,bpe:8000,bpe:4000;multi30k en-fr=word,bpe:8000")
QUICK_RUNS = "tatoeba en-fr=word,bpe:1000"  # both kinds of vocabulary, one task


def vocab_args(spec: str) -> list[str]:
    """"word" or "bpe:8000" / "unigram:8000" -> trainer fit options."""
    if spec == "word":
        return ["--vocab", "word", "--min-freq", "2"]  # the baseline of issue 9: --min-freq 2
    model, size = spec.split(":")
    return ["--vocab", "sentencepiece", "--subword-model", model, "--vocab-size", size]


def folder_mb(folder) -> float:
    return round(sum(p.stat().st_size for p in folder.iterdir()) / 1e6, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=300, help="training seconds per run")
    ap.add_argument("--runs", default=DEFAULT_RUNS, help="TASK=VOCAB,VOCAB;TASK=...")
    ap.add_argument("--quick", action="store_true", help=f"a small model, 3 s per run, 100 test sentences, --runs {QUICK_RUNS!r}")
    args = ap.parse_args()
    require_shared()
    from runtime import Translator
    from trainer.data import DataOptions, load_corpus
    from trainer.evaluate import scores

    model_args, n_test = [], None
    if args.quick:
        args.budget, n_test = 3, 100
        args.runs = QUICK_RUNS if args.runs == DEFAULT_RUNS else args.runs
        model_args = ["--hidden-dim", "128", "--emb-dim", "32", "--max-pairs", "3000"]
    results = {}
    for part in args.runs.split(";"):
        name, specs = part.split("=")
        task = TASKS[name]
        opts = DataOptions(src_lang=task["src"], tgt_lang=task["tgt"], max_pairs=n_test)
        pairs = load_corpus(str(task["test"]), opts).pairs
        sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
        for spec in specs.split(","):
            out = OUT / ("vocabulary-quick" if args.quick else "vocabulary") / f"{name.replace(' ', '_')}-{spec.replace(':', '')}"
            cmd = [sys.executable, "-m", "trainer", "fit", "--data", str(task["data"]), "--valid", str(task["valid"]),
                   "--src-lang", task["src"], "--tgt-lang", task["tgt"], "--epochs", "1000", "--patience", "1000",
                   "--time-budget", str(args.budget), "--out", str(out), "--force", *PAPER_SUBWORD_2026_11_26,
                   *vocab_args(spec), *model_args]
            t0 = time.perf_counter()
            fit = run(cmd)
            fit_s = time.perf_counter() - t0
            vocab_line = next(l for l in fit.stdout.splitlines() if l.startswith("data "))
            folder = out / "onnx"
            run([sys.executable, "-m", "export", "onnx", str(out / "checkpoint.pth"), "--out", str(folder), "--force"])
            t = Translator(folder, device="cpu")
            t0 = time.perf_counter()
            hyps = t.translate(sources, batch_size=32)
            batched_ms = 1000 * (time.perf_counter() - t0) / len(sources)
            few = sources[:50]
            t0 = time.perf_counter()
            for s in few:
                t.translate(s)
            b1_ms = 1000 * (time.perf_counter() - t0) / len(few)
            bleu, chrf = scores(hyps, refs, lowercase=True)
            bleu_c, chrf_c = scores(hyps, refs, lowercase=False)
            row = {"bleu": round(bleu, 2), "chrf": round(chrf, 2), "bleu_cased": round(bleu_c, 2),
                   "chrf_cased": round(chrf_c, 2), "unk_outputs": sum("<unk>" in h or "\u2047" in h for h in hyps),
                   "ms_b1": round(b1_ms, 2), "ms_batched": round(batched_ms, 2), "folder_mb": folder_mb(folder),
                   "fit_wall_s": round(fit_s, 1), "vocab": vocab_line.split("; ")[1],
                   "samples": [[s, h] for s, h in zip(sources[:3], hyps[:3])]}
            results.setdefault(name, {})[spec] = row
            print(f"{name} {spec}: {row}", file=sys.stderr, flush=True)
    emit({"budget_s": args.budget, "results": results, "quick": args.quick, "machine": machine()})


if __name__ == "__main__":
    main()
