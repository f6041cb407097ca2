"""The shortlist's bar: BLEU within 0.2 of the whole vocabulary and greedy output identical on at
least 95% of the test sentences, for shortlists of several sizes built from a trained run's data
(`trainer shortlist`, into a copy of its checkpoint), each exported with `--shortlist`, against the
same checkpoint exported without one: translated one sentence at a time and in batches of 32 (a
batch's candidates are the union of its sentences', and a format 5 folder decodes a batch whose
candidates don't pay with the whole vocabulary: runtime.shortlist.rows_pay); with the mean
candidates per batch. Speed is benchmarks/decode.py's (--shortlist): this process has PyTorch
loaded (the trainer reads the test set), whose threads slow onnxruntime's here.

    python benchmarks/shortlist.py --checkpoint RUN/checkpoint.pth --task "tatoeba en-fr"
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import TASKS, emit, machine, require_shared, run

SIZES = [(500, 50), (1000, 100), (2000, 100), (4000, 100)]


def test_pairs(task: str, n: int | None) -> tuple[list[str], list[str]]:
    from trainer.data import DataOptions, load_corpus

    t = TASKS[task]
    pairs = load_corpus(str(t["test"]), DataOptions(src_lang=t["src"], tgt_lang=t["tgt"], max_pairs=n)).pairs
    return [p[0] for p in pairs], [p[1] for p in pairs]


BATCHES = (1, 32)


def measure(folder: Path, sources: list[str], refs: list[str], shortlist: bool) -> dict:
    """-> per batch size: the translations, BLEU and sentences per second; and the mean candidates."""
    import sacrebleu

    from runtime import Translator

    t = Translator(folder, device="cpu", shortlist=shortlist)
    t.translate(sources[:16])
    result = {}
    for batch in BATCHES:
        out = [t.translate(s) for s in sources] if batch == 1 else t.translate(sources, batch_size=batch)
        result[f"b{batch}"] = {"outs": out, "bleu": round(sacrebleu.corpus_bleu(out, [refs], lowercase=True).score, 2)}
    if shortlist:
        rows = [ids for ids in (t.encode(s)[0] for s in sources) if ids]
        order = sorted(rows, key=len)
        result["candidates_b1"] = round(float(np.mean([len(t.shortlist.candidates(np.array([r]))) for r in rows])), 1)
        result["candidates_b32"] = round(float(np.mean([
            len(t.shortlist.candidates(np.concatenate(order[i: i + 32])[None])) for i in range(0, len(order), 32)])), 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--task", default="tatoeba en-fr", choices=list(TASKS))
    ap.add_argument("--quantize", choices=["fp32", "int8"], default="fp32")
    ap.add_argument("--n", type=int, help="test sentences (default: all)")
    ap.add_argument("--sizes", help="frequent:per_source,... (default: %s)" % ",".join(f"{a}:{b}" for a, b in SIZES))
    ap.add_argument("--from-model", action="store_true",
                    help="lists counted over the model's own output (trainer shortlist --from-model)")
    ap.add_argument("--quick", action="store_true", help="one size, 100 sentences")
    args = ap.parse_args()
    require_shared()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")] if args.sizes else SIZES
    if args.quick:
        sizes, args.n = sizes[1:2], 100
    checkpoint = Path(args.checkpoint).resolve()
    sources, refs = test_pairs(args.task, args.n)
    quantize = ["--quantize", "int8"] if args.quantize == "int8" else []
    results = {}
    with tempfile.TemporaryDirectory(prefix="shortlist-bench-") as tmp:
        copy = Path(tmp) / "checkpoint.pth"
        shutil.copy(checkpoint, copy)
        plain = Path(tmp) / "onnx"
        run([sys.executable, "-m", "export", "onnx", str(checkpoint), "--out", str(plain), "--no-shortlist", *quantize])
        full = results["whole vocabulary"] = measure(plain, sources, refs, False)
        for frequent, per_source in sizes:
            run([sys.executable, "-m", "trainer", "shortlist", str(copy), "--frequent", str(frequent), "--per-source",
                 str(per_source), "--cache-dir", str(checkpoint.parent / "cache"), "--from-model" if args.from_model else "--from-targets"])
            folder = Path(tmp) / f"onnx-{frequent}-{per_source}"
            run([sys.executable, "-m", "export", "onnx", str(copy), "--out", str(folder), "--shortlist", *quantize])
            short = r = results[f"{frequent}+{per_source}"] = measure(folder, sources, refs, True)
            for b in (f"b{batch}" for batch in BATCHES):
                same = sum(x == y for x, y in zip(short[b]["outs"], full[b]["outs"])) / len(sources)
                delta = round(short[b]["bleu"] - full[b]["bleu"], 2)
                short[b].update(identical=round(same, 4), bleu_delta=delta, passes=bool(abs(delta) <= 0.2 and same >= 0.95))
                print(f"{frequent:5d} + {per_source:3d}, {b}: BLEU {short[b]['bleu']:.2f} ({delta:+.2f}), identical "
                      f"{same:.1%}, candidates {r['candidates_' + b]:.0f}", flush=True)
            r["passes"] = all(r[f"b{batch}"]["passes"] for batch in BATCHES)
    for r in results.values():
        for b in BATCHES:
            r[f"b{b}"].pop("outs")
    emit({"results": results, "task": args.task, "checkpoint": str(checkpoint), "quantize": args.quantize,
          "counted_over": "the model's output" if args.from_model else "the training targets",
          "sentences": len(sources), "machine": machine()})


if __name__ == "__main__":
    main()
