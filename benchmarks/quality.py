"""Translation quality under a fixed wall-clock training budget, per model configuration: BLEU
and chrF (sacrebleu, case-insensitive and cased) on tatoeba-fra test and multi30k
test_2016_flickr (en->fr, de->en), through the runtime (fp32 and int8, greedy and beam), with
each decoding's cost, the runtime's peak RSS and the model folder's size.

Results accumulate in artifacts/bench/quality.json under "TASK | CONFIG", so tasks and
configurations can be run one invocation at a time (never two trainings at once on 2 cores).

    python benchmarks/quality.py --budget 1200 --tasks "tatoeba en-fr" --configs attention

Each slice's BLEU is saved as soon as it is measured; --from-stage K continues an interrupted run
from its folder's last.pth after K-1 finished slices.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

from common import OUT, TASKS, emit, machine, require_shared, run
from runtime.atomic import atomic_write

# trainer fit options on top of its defaults (SentencePiece BPE 8000, 2 x 256, ...)
CONFIGS = {"paper": ["--attention", "none"], "attention": ["--attention", "luong"]}

# the runtime alone in a fresh process: its peak RSS while translating the test set
RSS_PROBE = """
import resource, sys
from runtime import Translator
t = Translator(sys.argv[1], device="cpu")
t.translate(open(sys.argv[2], encoding="utf-8").read().splitlines(), batch_size=32, beam_size=int(sys.argv[3]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def scores(hyps, refs) -> dict:
    from trainer.evaluate import scores as sacre

    (bleu, chrf), (bleu_c, chrf_c) = sacre(hyps, refs, True), sacre(hyps, refs, False)
    return {"bleu": round(bleu, 2), "chrf": round(chrf, 2), "bleu_cased": round(bleu_c, 2), "chrf_cased": round(chrf_c, 2)}


def save(store, key: str, **entries) -> None:
    """Merge one configuration's entries ("curves", "results") into the results file, re-read first
    so that invocations run one after another never drop each other's keys; temporary name, then rename."""
    saved = json.loads(store.read_text()) if store.exists() else {}
    for section, value in entries.items():
        saved.setdefault(section, {})[key] = value
    saved["machine"] = machine()
    with atomic_write(store) as f:
        f.write(json.dumps(saved, indent=1, ensure_ascii=False))


def markdown(saved: dict) -> str:
    """docs/benchmarks.md's two tables from the results file: every decoding of every configuration,
    then each configuration's BLEU curve, size, runtime RSS and int8 - fp32 differences."""
    results, curves = saved.get("results", {}), saved.get("curves", {})
    lines = ["| task | configuration | decoding | BLEU | chrF | cased BLEU | cased chrF | ms/sent b1 | ms/sent b32 |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, rows in results.items():
        task, config = key.split(" | ")
        for name, r in rows.items():
            if isinstance(r, dict) and "bleu" in r:
                kind, _, beam = name.split()
                decoding = f"{kind} {'greedy' if beam == '1' else f'beam {beam}'}"
                lines.append(f"| {task} | {config} | {decoding} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['bleu_cased']:.2f} "
                             f"| {r['chrf_cased']:.2f} | {r['ms_b1']:.2f} | {r['ms_batched']:.2f} |")
    lines += ["", "| task | configuration | BLEU after each slice | epoch rows | folder fp32 / int8 MB "
              "| runtime peak RSS fp32 / int8 MB | int8 - fp32 BLEU per beam |", "| --- | --- | --- | ---: | --- | --- | --- |"]
    for key in dict.fromkeys([*curves, *results]):
        task, config = key.split(" | ")
        curve = " / ".join(f"{p['bleu']:.2f}" for p in curves.get(key, []))
        rows = results.get(key, {})
        beams = sorted({int(n.split()[-1]) for n in rows if n.startswith("fp32 beam")})
        diffs = " / ".join(f"{rows[f'int8 beam {b}']['bleu'] - rows[f'fp32 beam {b}']['bleu']:+.2f}" for b in beams
                           if f"int8 beam {b}" in rows)
        size = f"{rows['fp32 folder MB']} / {rows['int8 folder MB']}" if rows else ""
        rss = f"{rows['fp32 runtime peak RSS MB']} / {rows['int8 runtime peak RSS MB']}" if rows else ""
        lines.append(f"| {task} | {config} | {curve} | {rows.get('epochs', '')} | {size} | {rss} | {diffs} |")
    return "\n".join(lines)


def folder_mb(folder) -> float:
    return round(sum(p.stat().st_size for p in folder.iterdir()) / 1e6, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=1200, help="training seconds per task and configuration")
    ap.add_argument("--stages", type=int, default=4, help="BLEU measured after each of this many equal slices")
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--tasks", help="default: all three (with --quick: tatoeba en-fr)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--extra", default="", help="more trainer fit options (an ablation), e.g. '--label-smoothing 0.1'")
    ap.add_argument("--tag", default="", help="appended to the configuration's name in the results")
    ap.add_argument("--quick", action="store_true", help="a small model, 3 s per configuration, 100 test sentences")
    ap.add_argument("--from-stage", type=int, default=1, help="continue an interrupted run at this slice")
    ap.add_argument("--table", action="store_true", help="print the stored results as docs/benchmarks.md's tables")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads((OUT / ("quality-quick.json" if args.quick else "quality.json")).read_text())))
        return
    require_shared()
    from runtime import Translator
    from trainer.checkpoint import load_checkpoint
    from trainer.data import DataOptions, load_corpus
    from trainer.config import EvalConfig
    from trainer.evaluate import evaluate

    beams = [int(b) for b in args.beams.split(",")]
    model_args, n_test = shlex.split(args.extra), None
    if args.quick:
        args.budget, args.stages, beams, n_test = 3, 1, [1, 2], 100
        args.tasks = args.tasks or "tatoeba en-fr"
        model_args += ["--hidden-dim", "128", "--emb-dim", "32", "--max-pairs", "3000", "--vocab-size", "1000"]
    args.tasks = args.tasks or ",".join(TASKS)
    store = OUT / ("quality-quick.json" if args.quick else "quality.json")
    for name in args.tasks.split(","):
        task = TASKS[name]
        opts = DataOptions(src_lang=task["src"], tgt_lang=task["tgt"], max_pairs=n_test)
        pairs = load_corpus(str(task["test"]), opts).pairs
        sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
        sources_file = OUT / f"{name.replace(' ', '_')}.sources.txt"
        sources_file.parent.mkdir(parents=True, exist_ok=True)
        sources_file.write_text("\n".join(sources) + "\n", encoding="utf-8")
        for config in args.configs.split(","):
            key = f"{name} | {config}{args.tag}"
            out = OUT / ("quality-quick" if args.quick else "quality") / f"{name}_{config}{args.tag}".replace(" ", "_")
            langs = ["--src-lang", task["src"], "--tgt-lang", task["tgt"]]
            done = json.loads(store.read_text()).get("curves", {}).get(key, []) if store.exists() else []
            curve = done[: args.from_stage - 1]
            if len(curve) != args.from_stage - 1:
                sys.exit(f"--from-stage {args.from_stage}: {store} holds {len(done)} finished slices of {key!r}")
            for stage in range(args.from_stage, args.stages + 1):
                cmd = [sys.executable, "-m", "trainer", "fit", "--data", str(task["data"]), "--valid", str(task["valid"]),
                       "--epochs", "1000", "--patience", "1000", "--time-budget", str(args.budget / args.stages),
                       "--out", str(out), *langs, *CONFIGS[config], *model_args]
                run(cmd + (["--resume"] if stage > 1 else ["--force"]))
                ev = evaluate(load_checkpoint(out / "checkpoint.pth"), EvalConfig(str(task["test"]), samples=0), opts)
                curve.append({"train_s": round(args.budget * stage / args.stages), "bleu": round(ev.bleu, 2)})
                print(f"{key}: {curve[-1]}", file=sys.stderr)
                save(store, key, curves=curve)
            metrics = [l.split(",") for l in (out / "metrics.csv").read_text().splitlines()]
            rows = {"epochs": len(metrics) - 1, "train_args": CONFIGS[config] + model_args}
            for kind, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
                folder = out / f"onnx-{kind}"
                run([sys.executable, "-m", "export", "onnx", str(out / "checkpoint.pth"), "--out", str(folder), "--force", *extra])
                rows[f"{kind} folder MB"] = folder_mb(folder)
                rss = run([sys.executable, "-c", RSS_PROBE, str(folder), str(sources_file), "1"]).stdout.split()[-1]
                rows[f"{kind} runtime peak RSS MB"] = round(float(rss), 1)
                t = Translator(folder, device="cpu")
                for beam in beams:
                    t0 = time.perf_counter()
                    hyps = t.translate(sources, batch_size=32, beam_size=beam)
                    batched_ms = 1000 * (time.perf_counter() - t0) / len(sources)
                    few = sources[:50]
                    t0 = time.perf_counter()
                    for s in few:
                        t.translate([s], beam_size=beam)
                    b1_ms = 1000 * (time.perf_counter() - t0) / len(few)
                    rows[f"{kind} beam {beam}"] = {**scores(hyps, refs), "ms_b1": round(b1_ms, 2), "ms_batched": round(batched_ms, 2)}
                    print(f"{key} {kind} beam {beam}: {rows[f'{kind} beam {beam}']}", file=sys.stderr)
            save(store, key, results=rows)
    saved = json.loads(store.read_text())
    emit({"budget_s": args.budget, "results": saved["results"], "curves": saved["curves"], "quick": args.quick,
          "machine": machine()})


if __name__ == "__main__":
    main()
