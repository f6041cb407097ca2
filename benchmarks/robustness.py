"""Text as people type it: BLEU (sacrebleu, case-insensitive) of the runtime's output on a test set
whose sources are as written, without their final punctuation, in lower case without it, in ALL
CAPS and in Title Case, and on paragraphs of 3-5 consecutive sentences (BLEU of the joined output
against the joined references, with sentence splitting and with --no-split); plus the share of
outputs equal (ignoring case) to the output for the source as written.

Trains each configuration for --budget seconds (one at a time), exports it and measures it; results
accumulate in artifacts/bench/robustness.json under "TASK | CONFIG":

    python benchmarks/robustness.py --budget 1200 --tasks "tatoeba en-fr" --configs augmented,plain --tag " run1"
    python benchmarks/robustness.py --folder artifacts/onnx --builtin     # the quickstart model on builtin:test
    python benchmarks/robustness.py --table
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from common import OUT, TASKS, emit, machine, require_shared, run
from runtime.atomic import atomic_write

# trainer fit options on top of its defaults
CONFIGS = {
    "augmented": [],  # the defaults: augmentation on, ALL CAPS / Title Case restored at run time
    "plain": ["--no-augment"],  # the sources as written (casing still restored at run time)
    "plain, as typed": ["--no-augment", "--keep-input-case"],  # the model of before this work
    # training for ALL CAPS / Title Case instead of restoring case at run time
    "trained for case": ["--keep-input-case", "--augment", "upper=0.1,title=0.1"],
}
STORE = OUT / "robustness.json"


def variants():
    from trainer.augment import strip_final_punctuation, title_case

    return {
        "as written": lambda s: s,
        "no final punctuation": strip_final_punctuation,
        "lower case, no final punctuation": lambda s: strip_final_punctuation(s.lower()),
        "ALL CAPS": str.upper,
        "Title Case": title_case,
    }


def paragraphs(pairs: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    """Consecutive sentences, 3 to 5 at a time, joined by a space on both sides."""
    out, i = [], 0
    while i < len(pairs):
        k = rng.randint(3, 5)
        chunk = pairs[i: i + k]
        out.append((" ".join(s for s, _ in chunk), " ".join(t for _, t in chunk)))
        i += k
    return out


def measure(folder: Path, pairs: list[tuple[str, str]]) -> dict:
    from runtime import Translator
    from trainer.evaluate import scores

    t = Translator(folder, device="cpu")
    sources, refs = [s for s, _ in pairs], [r for _, r in pairs]
    rows, written = {}, None
    for name, change in variants().items():
        hyps = t.translate([change(s) for s in sources], batch_size=64)
        written = written or hyps
        same = sum(a.lower() == b.lower() for a, b in zip(hyps, written)) / len(hyps)
        rows[name] = {"bleu": round(scores(hyps, refs, lowercase=True)[0], 2), "same_as_written": round(same, 4)}
    paras = paragraphs(pairs, random.Random(0))
    for name, split in (("paragraphs", True), ("paragraphs, --no-split", False)):
        hyps = t.translate([p for p, _ in paras], batch_size=64, split_sentences=split)
        rows[name] = {"bleu": round(scores(hyps, [r for _, r in paras], lowercase=True)[0], 2), "texts": len(paras)}
    return rows


def builtin_forms(folder: Path) -> dict:
    """Every builtin:test source in its written forms: how many translate the same as written."""
    from runtime import Translator
    from trainer.augment import strip_final_punctuation
    from trainer.data import load_corpus

    sources = [s for s, _ in load_corpus("builtin:test").pairs]
    forms = {"no final punctuation": strip_final_punctuation, "lower case": str.lower, "ALL CAPS": str.upper}
    t = Translator(folder, device="cpu")
    written = [h.lower() for h in t.translate(sources)]
    out, all_same = {}, [True] * len(sources)
    for name, change in forms.items():
        same = [h.lower() == w for h, w in zip(t.translate([change(s) for s in sources]), written)]
        out[name] = sum(same)
        all_same = [a and b for a, b in zip(all_same, same)]
    out["all forms"], out["sentences"] = sum(all_same), len(sources)
    return out


def save(key: str, rows: dict) -> None:
    saved = json.loads(STORE.read_text()) if STORE.exists() else {}
    saved.setdefault("results", {})[key] = rows
    saved["machine"] = machine()
    STORE.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(STORE) as f:
        f.write(json.dumps(saved, indent=1, ensure_ascii=False))


def table(saved: dict) -> str:
    names = list(variants()) + ["paragraphs", "paragraphs, --no-split"]
    lines = ["| task | configuration | " + " | ".join(names) + " |", "| --- | --- |" + " ---: |" * len(names)]
    for key, rows in saved.get("results", {}).items():
        if "as written" not in rows:
            continue
        task, config = key.split(" | ")
        base = rows["as written"]["bleu"]
        cells = []
        for n in names:
            r = rows[n]
            share = f" ({r['bleu'] / base:.0%}, same {r['same_as_written']:.0%})" if "same_as_written" in r and n != "as written" \
                else (f" ({r['bleu'] / base:.0%})" if n != "as written" else "")
            cells.append(f"{r['bleu']:.2f}{share}")
        lines.append(f"| {task} | {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=1200, help="training seconds per task and configuration")
    ap.add_argument("--tasks", help="default: tatoeba en-fr,multi30k de-en (with --quick: tatoeba en-fr)")
    ap.add_argument("--configs", help="default: augmented,plain (with --quick: augmented)")
    ap.add_argument("--tag", default="", help="appended to the configuration's name (e.g. ' run2')")
    ap.add_argument("--folder", help="measure this model folder instead of training")
    ap.add_argument("--builtin", action="store_true", help="with --folder: the written forms of builtin:test")
    ap.add_argument("--quick", action="store_true", help="a small model, 5 s, 200 test sentences")
    ap.add_argument("--table", action="store_true", help="print the stored results as docs/benchmarks.md's table")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(STORE.read_text())))
        return
    if args.folder and args.builtin:
        result = builtin_forms(Path(args.folder))
        print(result, file=sys.stderr)
        return emit({"builtin_forms": result, "folder": args.folder, "machine": machine()})
    require_shared()
    from trainer.data import DataOptions, load_corpus

    extra, n_test = [], None
    if args.quick:
        args.budget, n_test = 5, 200
        args.tasks, args.configs = args.tasks or "tatoeba en-fr", args.configs or "augmented"
        extra = ["--hidden-dim", "64", "--emb-dim", "32", "--max-pairs", "5000", "--vocab-size", "1000"]
    args.tasks, args.configs = args.tasks or "tatoeba en-fr,multi30k de-en", args.configs or "augmented,plain"
    results = {}
    for name in args.tasks.split(","):
        task = TASKS[name]
        pairs = load_corpus(str(task["test"]), DataOptions(src_lang=task["src"], tgt_lang=task["tgt"], max_pairs=n_test)).pairs
        if args.folder:
            results[f"{name} | {args.folder}"] = rows = measure(Path(args.folder), pairs)
            print(json.dumps(rows), file=sys.stderr)
            continue
        for config in args.configs.split(","):
            key = f"{name} | {config}{args.tag}"
            out = OUT / ("robustness-quick" if args.quick else "robustness") / key.replace(" | ", "_").replace(" ", "_").replace(",", "")
            run([sys.executable, "-m", "trainer", "fit", "--data", str(task["data"]), "--valid", str(task["valid"]),
                 "--src-lang", task["src"], "--tgt-lang", task["tgt"], "--epochs", "1000", "--patience", "1000",
                 "--time-budget", str(args.budget), "--out", str(out), "--force", *CONFIGS[config], *extra])
            run([sys.executable, "-m", "export", "onnx", str(out / "checkpoint.pth"), "--out", str(out / "onnx"), "--force"])
            run([sys.executable, "-m", "export", "onnx", str(out / "checkpoint.pth"), "--out", str(out / "onnx-int8"),
                 "--force", "--quantize", "int8"])
            results[key] = rows = measure(out / "onnx", pairs)
            int8 = measure(out / "onnx-int8", pairs)  # 7-bit weights: int8 against fp32, and on text as typed
            rows["int8"] = {name: int8[name]["bleu"] for name in int8}
            rows["train_args"] = CONFIGS[config] + extra
            print(f"{key}: {json.dumps(rows)}", file=sys.stderr)
            if not args.quick:
                save(key, rows)
    emit({"budget_s": args.budget, "results": results, "quick": args.quick, "machine": machine()})


if __name__ == "__main__":
    main()
