"""Decoding speed, size and fidelity: PyTorch eager (the reference) vs the onnxruntime runtime.

The reference decodes one sentence at a time as the reference design does: an encoder call, then
one decoder-module call per step with `argmax().item()` per token. Every row runs in its own
process so peak RSS belongs to that configuration alone.

--tree DIR times another source tree side by side (e.g. `git worktree add ../before COMMIT`): its
exporter writes its own folders from the same checkpoint, and its rows (`before_*`) run between this
tree's, so machine drift hits both alike. The fp32 and int8 folders are what `export onnx` writes by
default: with the checkpoint's shortlist when it is the kind `trainer fit` builds (a fixed list of
what the model writes; `trainer shortlist CHECKPOINT` adds it to an older checkpoint). The fidelity
rows (`*whole*`: PyTorch against onnxruntime) are exported with --no-shortlist, as are the int8
rows --whole adds. The row graphs_int8_b1 times the int8 folder's graphs alone at batch 1 (their runs, nothing of the
Python around them): the bound of any change outside the graphs.

    python benchmarks/decode.py --checkpoint artifacts/bench/robustness/<run>/checkpoint.pth --tree ../before
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, ROOT, TATOEBA, emit, machine, peak_rss_mb, require_shared, run

ROWS = ["reference_eager_b1", "runtime_fp32whole_b1", "runtime_fp32_b1", "runtime_int8_b1", "graphs_int8_b1",
        "runtime_fp32whole_b32", "runtime_fp32_b32", "runtime_int8_b32", "runtime_fp32_b128", "runtime_int8_b128"]
WHOLE_ROWS = ["runtime_int8whole_b1", "runtime_int8whole_b32", "runtime_int8whole_b128"]
KINDS = {"fp32": [], "int8": ["--quantize", "int8"], "fp32whole": ["--no-shortlist"],
         "int8whole": ["--quantize", "int8", "--no-shortlist"]}


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file()) / 1e6


def sentences(n: int) -> list[str]:
    lines = (TATOEBA / "test.tsv").read_text(encoding="utf-8").splitlines()
    return [l.split("\t")[0] for l in lines[:n]]


def reference_row(ckpt_path: str, texts: list[str], device: str) -> tuple[list[float], list[str]]:
    import torch

    from runtime.model_format import DecodingDefaults
    from runtime.vocab import EOS_ID, SOS_ID, max_target_len, source_ids
    from trainer.checkpoint import load_checkpoint
    from trainer.checkpoint import model_from_checkpoint

    torch.set_grad_enabled(False)
    model, sv, tv, tok = model_from_checkpoint(load_checkpoint(ckpt_path))
    model.to(device)
    dec = DecodingDefaults()
    times, outs = [], []
    for text in texts:
        t0 = time.perf_counter()
        ids = source_ids(tok.tokenize(text), sv, model.cfg.reverse_source, model.cfg.max_source_len)
        src = torch.tensor([ids], device=device)
        state = model.encoder(src, torch.tensor([len(ids)]))
        prev, words = torch.tensor([SOS_ID], device=device), []
        for _ in range(max_target_len(len(ids), dec)):
            logits, state = model.decoder.step(prev, state)
            token = logits.argmax(-1).item()
            if token == EOS_ID:
                break
            words.append(token)
            prev = torch.tensor([token], device=device)
        outs.append(tok.detokenize(tv.tokens(words)))
        times.append(time.perf_counter() - t0)
    return times, outs


def runtime_row(model_dir: str, texts: list[str], batch: int, device: str) -> tuple[list[float], list[str]]:
    import runtime
    from runtime import Translator

    if hasattr(runtime, "share_thread_pool"):  # as `runtime translate` runs (a tree before it: a pool per session)
        runtime.share_thread_pool()
    t = Translator(model_dir, device=device)
    t.translate(texts[:4], batch_size=batch)  # warm-up
    times, outs = [], []
    if batch == 1:
        for text in texts:
            t0 = time.perf_counter()
            outs += t.translate([text])
            times.append(time.perf_counter() - t0)
        return times, outs
    # batched: the runtime sorts by length inside each call; per-sentence time = call time / size
    for i in range(0, len(texts), batch):
        chunk = texts[i : i + batch]
        t0 = time.perf_counter()
        outs += t.translate(chunk, batch_size=batch)
        times += [(time.perf_counter() - t0) / len(chunk)] * len(chunk)
    return times, outs


def graphs_row(model_dir: str, texts: list[str], device: str) -> tuple[list[float], list[str]]:
    """Batch 1 with everything but the graphs' runs free: per sentence, the encoder's run and the
    decoder steps its translation takes (counted in a first pass), each step fed the last one's
    outputs (a format 8 fixed shortlist's decoder: one run of its Loop, as the runtime runs it at
    batch 1), timed without the Python around them (the sentence's preparation and tokens, the
    greedy loop's bookkeeping, the session wrappers, detokenizing). What no change outside the
    graphs can beat; its outputs are the translations of the first pass."""
    import numpy as np

    import runtime
    from runtime import Translator
    from runtime.decode import pad_batch
    from runtime.vocab import SOS_ID, max_target_len

    from runtime.state import MAX_STEPS, STEP_IDS  # this tree's row only

    runtime.share_thread_pool()
    t = Translator(model_dir, device=device)
    # the decoder every batch takes: a fixed shortlist's (format 7), else the folder's one decoder
    wrapper = getattr(t.decoder, "rows", t.decoder)
    encoder, decoder = t.encoder.session, wrapper.session
    enc_names = [o.name for o in encoder.get_outputs()]
    dec_names = [o.name for o in decoder.get_outputs() if o.name not in ("log_probs", STEP_IDS)]  # what greedy search asks for
    dec_inputs = [i.name for i in decoder.get_inputs()]
    steps, outs, counted = [], [], []
    run = wrapper.run

    def counting(names, feeds):  # the first pass: how many steps each sentence's translation takes
        counted.append(1)
        return run(names, feeds)

    wrapper.run = counting
    t.translate(texts[:4], batch_size=1)  # warm-up
    for text in texts:
        counted.clear()
        outs += t.translate([text])
        steps.append(len(counted))
    wrapper.run = run
    times = []
    multi_step = getattr(wrapper, "multi_step", False)  # format 8: a sentence's steps in one run
    for text, n in zip(texts, steps):
        src, lengths = pad_batch([t.encode(text)[0]])
        cap = np.array(max_target_len(src.shape[1], t.config.decoding), dtype=np.int64)
        t0 = time.perf_counter()
        state = dict(zip(enc_names, encoder.run(enc_names, {"src_ids": src, "src_lengths": lengths})))
        state.update(prev_ids=np.array([SOS_ID]), input_feed=np.zeros_like(state["hidden"][0]))
        feeds = {name: state[name] for name in dec_inputs}
        if multi_step:
            decoder.run([STEP_IDS], {**feeds, MAX_STEPS: cap})
        for _ in range(0 if multi_step else n):
            out = dict(zip(dec_names, decoder.run(dec_names, feeds)))
            feeds.update({"prev_ids": out["next_ids"], **{k[len("new_"):]: v for k, v in out.items() if k.startswith("new_")}})
        times.append(time.perf_counter() - t0)
    return times, outs


def child(args) -> None:
    texts = sentences(args.n_b1 if args.row.endswith("_b1") else args.n)
    if args.row.startswith("reference"):
        times, outs = reference_row(args.checkpoint, texts, args.device)
    elif args.row.startswith("graphs"):
        times, outs = graphs_row(json.loads(args.folders)[args.row.split("_")[1]], texts, args.device)
    else:
        _, kind, b = args.row.split("_")
        times, outs = runtime_row(json.loads(args.folders)[kind], texts, int(b[1:]), args.device)
    print(json.dumps({"times": times, "outs": outs, "rss_mb": peak_rss_mb(), "torch_loaded": "torch" in sys.modules}))


def cold_start(model_dir: str, repeat: int) -> dict:
    cmd = [sys.executable, "-m", "runtime", "translate", "--model", model_dir, "--device", "cpu", "hello"]
    # everything `runtime translate` imports: numpy, click and onnxruntime (runtime.sessions)
    import_cmd = [sys.executable, "-c", "import runtime.cli, runtime.translator, runtime.sessions"]
    base_cmd = [sys.executable, "-c", "pass"]

    def timed(c):
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(c, cwd=ROOT, capture_output=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    base = timed(base_cmd)
    return {"cold_start_s": round(timed(cmd), 3), "import_runtime_s": round(timed(import_cmd) - base, 3),
            "python_startup_s": round(base, 3)}


def export_folders(checkpoint: str, kinds, tree: str | None = None) -> dict[str, str]:
    """The checkpoint's folders of each kind, written by this tree's exporter or another tree's."""
    folders = {}
    for kind in kinds:
        folders[kind] = str(Path(checkpoint).parent / (f"onnx-before-{kind}" if tree else f"onnx-{kind}"))
        run([sys.executable, "-m", "export", "onnx", checkpoint, "--out", folders[kind], "--force", *KINDS[kind]], tree)
    return folders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(OUT / "tf-1.0" / "checkpoint.pth"))
    ap.add_argument("--n", type=int, default=1590, help="test sentences for batched rows")
    ap.add_argument("--n-b1", type=int, default=300, help="test sentences for batch-1 rows")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tree", help="another source tree to time side by side (its rows: before_*)")
    ap.add_argument("--whole", action="store_true", help="also int8 rows without the shortlist (--no-shortlist)")
    ap.add_argument("--quick", action="store_true", help="a 30-second default model; under 3 minutes")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--folders", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.row:
        return child(args)
    require_shared()
    if args.quick:
        # a short but real training of the default model (SentencePiece 8,000, attention): it emits
        # sentences of about the right length, so its steps per sentence are a trained model's
        args.n, args.n_b1 = 256, 60
        args.checkpoint = str(OUT / "quick" / "checkpoint.pth")
        run([sys.executable, "-m", "trainer", "fit", "--data", str(TATOEBA / "train.tsv"), "--max-pairs", "20000",
             "--time-budget", "30", "--out", str(OUT / "quick"), "--force"])
    elif not Path(args.checkpoint).exists():
        sys.exit(f"{args.checkpoint}: no checkpoint; run benchmarks/teacher_forcing.py first or pass --checkpoint")
    args.checkpoint = str(Path(args.checkpoint).resolve())  # the other tree's processes run in that tree
    args.tree = str(Path(args.tree).resolve()) if args.tree else None
    kinds = ["fp32", "int8", "fp32whole"] + (["int8whole"] if args.whole else [])
    trees = {"": (None, export_folders(args.checkpoint, kinds))}
    if args.tree:
        trees["before_"] = (args.tree, export_folders(args.checkpoint, ["fp32", "int8"], args.tree))
    rows = {}
    for row in ROWS + (WHOLE_ROWS if args.whole else []):
        if args.device == "cuda" and "int8" in row:
            continue  # dynamic int8 ops run on the CPU provider only
        for prefix, (tree, folders) in trees.items():
            if ("whole_" in row or row.startswith("graphs")) and prefix:  # this tree's folders only
                continue
            r = run([sys.executable, str(Path(__file__).resolve()), "--row", row, "--checkpoint", args.checkpoint, "--folders", json.dumps(folders),
                     "--n", str(args.n), "--n-b1", str(args.n_b1), "--device", args.device], tree)
            rows[prefix + row] = json.loads(r.stdout.strip().splitlines()[-1])
    import torch

    ckpt_mb = sum(v.numel() * v.element_size() for v in torch.load(args.checkpoint, weights_only=True)["model_state"].values()) / 1e6
    table = {}
    for name, r in rows.items():
        prefix = "before_" if name.startswith("before_") else ""
        ref = rows[prefix + "reference_eager_b1"]
        ts = sorted(r["times"])
        sps = len(ts) / sum(ts)
        kind = name.removeprefix(prefix).split("_")[1]
        table[name] = {
            "ms_p50": round(1000 * statistics.median(ts), 3), "ms_p90": round(1000 * ts[int(0.9 * (len(ts) - 1))], 3),
            "sent_per_s": round(sps, 1), "speedup": round(sps * sum(ref["times"]) / len(ref["times"]), 2),
            "size_mb": round(ckpt_mb if "reference" in name else folder_mb(trees[prefix][1][kind]), 2),
            "peak_rss_mb": round(r["rss_mb"], 1), "torch_loaded": r["torch_loaded"], "sentences": len(ts),
        }
    same = lambda a, b: round(sum(x == y for x, y in zip(rows[a]["outs"], rows[b]["outs"])) / len(rows[a]["outs"]), 4)
    # fidelity: onnxruntime fp32 greedy (no shortlist) vs PyTorch greedy on the same sentences; batch 32 vs
    # batch 1; the default folders (with the checkpoint's shortlist, if any) vs none; int8 vs fp32
    fid = {"fp32_identical_to_pytorch_b1": same("reference_eager_b1", "runtime_fp32whole_b1"),
           "fp32_b32_identical_to_b1": same("runtime_fp32whole_b1", "runtime_fp32whole_b32"),
           "fp32_shortlist_identical_b1": same("runtime_fp32whole_b1", "runtime_fp32_b1"),
           "fp32_shortlist_identical_b32": same("runtime_fp32whole_b32", "runtime_fp32_b32")}
    if "runtime_int8_b32" in rows:
        fid["int8_identical_to_fp32"] = same("runtime_fp32_b32", "runtime_int8_b32")
    if "runtime_int8whole_b32" in rows:
        fid["int8_shortlist_identical_b32"] = same("runtime_int8whole_b32", "runtime_int8_b32")
    for kind in ("fp32whole", "int8whole"):
        if f"runtime_{kind}_b32" in rows and "before_runtime_" + kind[:4] + "_b32" in rows:
            fid[f"{kind[:4]}_whole_b32_identical_to_before"] = same(f"runtime_{kind}_b32", f"before_runtime_{kind[:4]}_b32")
    cold = cold_start(trees[""][1]["fp32"], 3 if args.quick else 7)
    print(f"{'configuration':30s} {'p50 ms':>8s} {'p90 ms':>8s} {'sent/s':>9s} {'speedup':>8s} {'size MB':>8s} {'RSS MB':>8s}")
    for name, t in table.items():
        print(f"{name:30s} {t['ms_p50']:8.2f} {t['ms_p90']:8.2f} {t['sent_per_s']:9.1f} {t['speedup']:7.1f}x "
              f"{t['size_mb']:8.2f} {t['peak_rss_mb']:8.1f}")
    # after / before, for each runtime row both trees ran: the ratio of their sentences per second
    versus = {name: round(t["sent_per_s"] / table["before_" + name]["sent_per_s"], 3)
              for name, t in table.items() if "before_" + name in table}
    if versus:
        print(f"this tree / before: {versus}")
    print(f"fidelity {fid}; cold start {cold}")
    batched = lambda prefix: max(t["sent_per_s"] for n, t in table.items() if n.startswith(prefix + "runtime")
                                 and not n.endswith("_b1") and "whole_" not in n)
    ref_sps = lambda prefix: table[prefix + "reference_eager_b1"]["sent_per_s"]
    emit({
        "speedup_fp32_b1": table["runtime_fp32_b1"]["speedup"],
        "speedup_int8_b1": table.get("runtime_int8_b1", {}).get("speedup"),
        "speedup_batched": round(batched("") / ref_sps(""), 2),
        "speedup_int8_b1_graphs_alone": table.get("graphs_int8_b1", {}).get("speedup"),
        **({"before": {"speedup_int8_b1": table["before_runtime_int8_b1"]["speedup"],
                       "speedup_batched": round(batched("before_") / ref_sps("before_"), 2)},
            "versus_before": versus} if args.tree else {}),
        "rows": table, "fidelity": fid, **cold, "device": args.device, "checkpoint": args.checkpoint,
        "tree": args.tree, "machine": machine(),
    })


if __name__ == "__main__":
    main()
