"""Translation quality under a fixed wall-clock training budget: BLEU and chrF (sacrebleu) on
tatoeba-fra test and multi30k test_2016_flickr (en->fr, de->en), through the runtime: greedy and
beam 2/5/12 (fp32), greedy and beam 5 (int8), with each beam size's decoding cost.
"""
from __future__ import annotations

import argparse
import sys
import time

from common import MULTI30K, OUT, TATOEBA, emit, machine, require_shared, run

TASKS = {
    "tatoeba en-fr": dict(data=TATOEBA / "train.tsv", valid=TATOEBA / "valid.tsv", test=TATOEBA / "test.tsv", src="en", tgt="fr"),
    "multi30k en-fr": dict(data=MULTI30K / "train", valid=MULTI30K / "val", test=MULTI30K / "test_2016_flickr", src="en", tgt="fr"),
    "multi30k de-en": dict(data=MULTI30K / "train", valid=MULTI30K / "val", test=MULTI30K / "test_2016_flickr", src="de", tgt="en"),
}


def score(hyps, refs, lowercase=True) -> tuple[float, float]:
    from trainer.evaluate import scores

    bleu, chrf = scores(hyps, refs, lowercase)
    return round(bleu, 2), round(chrf, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=300, help="training seconds per task")
    ap.add_argument("--stages", type=int, default=3, help="BLEU measured after each of this many equal slices")
    ap.add_argument("--beams", default="1,2,5,12")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--quick", action="store_true", help="a small model, 4 s per task, 100 test sentences")
    args = ap.parse_args()
    require_shared()
    from runtime import Translator
    from trainer.checkpoint import load_checkpoint
    from trainer.data import DataOptions, load_corpus
    from trainer.evaluate import evaluate

    beams = [int(b) for b in args.beams.split(",")]
    model_args, n_test = [], None
    if args.quick:
        args.budget, args.stages, beams, n_test = 4, 1, [1, 2], 100
        model_args = ["--hidden-dim", "128", "--emb-dim", "32", "--max-pairs", "3000"]
    results, curves = {}, {}
    for name in args.tasks.split(","):
        task = TASKS[name]
        out = OUT / ("quality-quick" if args.quick else "quality") / name.replace(" ", "_")
        langs = ["--src-lang", task["src"], "--tgt-lang", task["tgt"]]
        opts = DataOptions(src_lang=task["src"], tgt_lang=task["tgt"], max_pairs=n_test)
        pairs = load_corpus(str(task["test"]), opts).pairs
        sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
        curve = []
        for stage in range(1, args.stages + 1):
            cmd = [sys.executable, "-m", "trainer", "fit", "--data", str(task["data"]), "--valid", str(task["valid"]),
                   "--min-freq", "2", "--epochs", "1000", "--patience", "1000", "--time-budget",
                   str(args.budget / args.stages), "--out", str(out), *langs, *model_args]
            run(cmd + (["--resume"] if stage > 1 else ["--force"]))
            ev = evaluate(load_checkpoint(out / "checkpoint.pth"), str(task["test"]), opts, n_samples=0)
            curve.append({"train_s": round(args.budget * stage / args.stages), "bleu": round(ev.bleu, 2)})
            print(f"{name}: {curve[-1]}", file=sys.stderr)
        curves[name] = curve
        rows = {}
        for kind, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
            folder = out / f"onnx-{kind}"
            run([sys.executable, "-m", "export", "onnx", str(out / "checkpoint.pth"), "--out", str(folder), "--force", *extra])
            t = Translator(folder, device="cpu")
            for beam in beams if kind == "fp32" else [b for b in beams if b in (1, 5)]:
                t0 = time.perf_counter()
                hyps = t.translate(sources, batch_size=32, beam_size=beam)
                batched_ms = 1000 * (time.perf_counter() - t0) / len(sources)
                few = sources[:50]
                t0 = time.perf_counter()
                for s in few:
                    t.translate([s], beam_size=beam)
                b1_ms = 1000 * (time.perf_counter() - t0) / len(few)
                bleu, chrf = score(hyps, refs)
                rows[f"{kind} beam {beam}"] = {"bleu": bleu, "chrf": chrf, "ms_b1": round(b1_ms, 2), "ms_batched": round(batched_ms, 2)}
                print(f"{name} {kind} beam {beam}: {rows[f'{kind} beam {beam}']}", file=sys.stderr)
        results[name] = rows
    emit({"budget_s": args.budget, "results": results, "curves": curves, "quick": args.quick, "machine": machine()})


if __name__ == "__main__":
    main()
