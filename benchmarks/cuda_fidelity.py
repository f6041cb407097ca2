"""CUDA against the CPU provider on one model folder: how often greedy and beam-5 translations are
identical, how far beam scores drift, and ms/sentence, with onnxruntime's CUDA provider in full
float32 (the runtime's setting) and in TF32 (onnxruntime's default). Needs onnxruntime-gpu and a GPU.

    python benchmarks/cuda_fidelity.py artifacts/onnx --n 1590
"""
from __future__ import annotations

import argparse
import time

from common import TATOEBA, emit, machine, require_shared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="a model folder")
    ap.add_argument("--n", type=int, default=1590, help="tatoeba-fra test sentences (greedy); beam uses 300")
    ap.add_argument("--quick", action="store_true", help="100 sentences")
    args = ap.parse_args()
    if args.quick:
        args.n = 100
    require_shared()
    from runtime import Translator, sessions

    lines = (TATOEBA / "test.tsv").read_text(encoding="utf-8").splitlines()[: args.n]
    texts = [line.split("\t")[0] for line in lines]
    cpu = Translator(args.model, device="cpu")
    want = cpu.translate(texts, batch_size=64)
    want_beam = cpu.translate(texts[:300], beam_size=5, return_scores=True)
    rows = {}
    for tf32 in ("0", "1"):
        sessions.CUDA_OPTIONS["use_tf32"] = tf32
        gpu = Translator(args.model, device="cuda")
        got = gpu.translate(texts, batch_size=64)
        got_beam = gpu.translate(texts[:300], beam_size=5, return_scores=True)
        pairs = [(a[0], b[0]) for a, b in zip(got_beam, want_beam)]
        row = {"greedy_identical": round(sum(a == b for a, b in zip(got, want)) / len(texts), 4),
               "beam5_identical": round(sum(a.text == b.text for a, b in pairs) / len(pairs), 4),
               "max_score_diff": max((abs(a.score - b.score) for a, b in pairs if a.text == b.text), default=None)}
        for batch, n in ((1, 200), (128, len(texts))):
            gpu.translate(texts[:8], batch_size=batch)  # warm-up
            t0 = time.perf_counter()
            gpu.translate(texts[:n], batch_size=batch)
            row[f"ms_per_sentence_b{batch}"] = round(1000 * (time.perf_counter() - t0) / n, 3)
        rows["tf32" if tf32 == "1" else "fp32"] = row
        print(f"use_tf32={tf32}: {row}")
    sessions.CUDA_OPTIONS["use_tf32"] = "0"
    emit({"rows": rows, "model": args.model, "sentences": len(texts), "machine": machine()})


if __name__ == "__main__":
    main()
