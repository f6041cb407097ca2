"""Where a decoder step's time goes: onnxruntime's own profiler over many steps of real sentences, at
batch 1 and 32, for a model's fp32 and int8 folders, grouped by what the operators do (the LSTM,
attention, the output projection, log-softmax, ArgMax, int8's activation quantization, the rest),
plus what session.run spends outside the graph's nodes and the Python wrapper outside session.run
(mean microseconds per step after 20 warm-up steps, so that the groups add up to the step). And a
roofline: the weights a step reads at batch 1 against this machine's memory bandwidth, the
multiply-adds per second at batch 32 against onnxruntime's own MatMul of the output projection's size.
And the encoder's run (no profiler: median of 5 passes over 320 test sentences), per batch of 1 and 32.

    python benchmarks/profile_step.py --fp32 DIR --int8 DIR
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict

import numpy as np

from common import TATOEBA, emit, machine, require_shared

WARMUP = 20  # decoder steps before any figure is taken


def group_of(op: str, name: str) -> str:
    """A node's group, by the module names in the exported graph's node names (.../attention/..., .../out/...)."""
    if op == "DynamicQuantizeLinear":
        return "int8 activation quantization"
    if op in ("LSTM", "DynamicQuantizeLSTM"):
        return "LSTM"
    if "/attention/" in name:
        return "attention"
    if "/out/" in name:
        return "output projection"
    if "/argmax/" in name:  # format 4's blocked ArgMax: ReduceMax, ArgMax, GatherElements, ...
        return "ArgMax"
    if op in ("LogSoftmax", "ArgMax"):
        return op
    return "other (gathers, slices, casts)"


def states(folder: str, batch: int, sentences: list[str]):
    """Real decoder states: the encoder's on `batch` sentences, and greedy's token path from them."""
    from runtime import Translator
    from runtime.decode import pad_batch

    t = Translator(folder, device="cpu")
    rows = [ids for ids in (t.encode(s)[0] for s in sentences[:batch]) if ids]
    src, lengths = pad_batch(rows)
    return t, src, lengths


def encoder_us(folder: str, batch: int, sentences: list[str]) -> float:
    """The encoder session's run, µs per batch of `batch` sentences: median of 5 passes over 320."""
    from runtime import Translator
    from runtime.decode import pad_batch

    t = Translator(folder, device="cpu")
    session = t.encoder.session
    names = [o.name for o in session.get_outputs()]
    rows = [ids for ids in (t.encode(s)[0] for s in sentences[:320]) if ids]
    feeds = [dict(zip(("src_ids", "src_lengths"), pad_batch(rows[i: i + batch]))) for i in range(0, len(rows), batch)]
    passes = []
    for _ in range(6):  # the first warms up
        t0 = time.perf_counter()
        for f in feeds:
            session.run(names, f)
        passes.append((time.perf_counter() - t0) / len(feeds) * 1e6)
    return round(statistics.median(passes[1:]), 1)


def step_graph(model: bytes) -> bytes:
    """A decoder graph's bytes, or (format 8, a fixed shortlist's Loop) its step's, as a graph of its
    own: the profiler then times the step's operators, as the runtime steps it for batches."""
    import onnx

    decoder = onnx.load_model_from_string(model)
    if not any(n.op_type == "Loop" for n in decoder.graph.node):
        return model
    from export.step_graph import step_of

    return step_of(decoder).SerializeToString()


def profile(folder: str, batch: int, sentences: list[str], steps: int) -> dict:
    import onnxruntime as ort

    from runtime.model_format import open_folder, weights_file
    from runtime.sessions import DecoderSession, add_weights
    from runtime.weights import read_weights

    t, src, lengths = states(folder, batch, sentences)
    _, data = open_folder(folder)
    # the decoder the runtime picks for this batch: a shortlist folder's (format 5) when the encoder
    # gave the batch its output rows (runtime.shortlist.rows_pay), else decoder.onnx
    graph = "decoder_shortlist.onnx" if "candidates" in t.encoder(src, lengths) and "decoder_shortlist.onnx" in data \
        else "decoder.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "step")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        add_weights(opts, read_weights(data[weights_file(graph)]) if weights_file(graph) in data else None)  # format 6
        session = ort.InferenceSession(step_graph(data[graph]), sess_options=opts, providers=["CPUExecutionProvider"])
        encoder, decoder = t.encoder, DecoderSession(session, "cpu")
        state = encoder(src, lengths)
        prev = np.full(len(src), 2, dtype=np.int64)
        walls = []
        for _ in range(WARMUP + steps):
            t0 = time.perf_counter()
            prev, _, state = decoder.step(prev, state)
            walls.append(time.perf_counter() - t0)
            if (prev == 3).all():  # every sentence ended: start them again from the encoder's state
                state, prev = encoder(src, lengths), np.full(len(src), 2, dtype=np.int64)
        trace = json.load(open(session.end_profiling()))
    # the first WARMUP runs allocate and fill caches: every figure below is over the later runs only
    runs = sorted((e for e in trace if e.get("name") == "model_run"), key=lambda e: e["ts"])[WARMUP:]
    start = runs[0]["ts"]
    per_group = defaultdict(float)
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= start:
            args = event.get("args", {})
            per_group[group_of(args.get("op_name", ""), event["name"].removesuffix("_kernel_time"))] += event["dur"]
    # means, so that the groups add up: nodes + session.run's own work = session.run, + the wrapper = step
    run_us = statistics.fmean(e["dur"] for e in runs)
    step_us = 1e6 * statistics.fmean(walls[WARMUP:])
    nodes = {g: round(us / len(runs), 1) for g, us in per_group.items()}
    nodes["session.run outside the nodes"] = round(run_us - sum(per_group.values()) / len(runs), 1)
    nodes["Python outside session.run"] = round(step_us - run_us, 1)
    return {"us_per_step": round(step_us, 1), "batch": len(src), "graph": graph, "groups_us": nodes}


def bandwidth_gb_s() -> float:
    a = np.ones(128 << 20, dtype=np.uint8)  # 128 MiB, far beyond the caches
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return round(2 * a.nbytes / best / 1e9, 1)  # read + write


def matmul_gmacs(batch: int, hidden: int, vocab: int) -> float:
    """onnxruntime's own MatMul of (batch x hidden) x (hidden x vocab): its multiply-adds per second."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((hidden, vocab)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, vocab])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ones((batch, hidden), dtype=np.float32)
    for _ in range(10):
        s.run(None, {"x": x})
    t0, n = time.perf_counter(), 200
    for _ in range(n):
        s.run(None, {"x": x})
    return round(batch * hidden * vocab * n / (time.perf_counter() - t0) / 1e9, 2)


def roofline(folder: str, step_b1_us: float, step_b32_us: float) -> dict:
    import onnx

    from runtime.model_format import load_config

    cfg = load_config(folder)
    m = onnx.load(os.path.join(folder, "decoder.onnx"))
    weight_bytes = sum(int(np.prod(i.dims)) * (1 if i.data_type in (2, 3) else 4) for i in m.graph.initializer
                       if len(i.dims) >= 2 and "embedding" not in i.name.lower())
    h, v, e, L = cfg.hidden_dim, cfg.tgt_vocab_size, cfg.emb_dim, cfg.layers
    attention = 3 * h * h if cfg.attention == "luong" else 0  # linear_in, linear_out (2H x H)
    lstm = 4 * h * ((e + (h if cfg.attention == "luong" else 0)) + h) + (L - 1) * 8 * h * h
    macs = lstm + attention + h * v  # per sentence and step (the attention's own products: S x H, left out)
    bw = bandwidth_gb_s()
    return {"weight_bytes_per_step": weight_bytes, "memory_bandwidth_gb_s": bw,
            "b1_step_us": step_b1_us, "b1_step_if_memory_bound_us": round(weight_bytes / (bw * 1e3), 1),
            "macs_per_sentence_step": macs, "output_projection_share": round(h * v / macs, 3),
            "b32_gmacs": round(32 * macs / step_b32_us / 1e3, 2), "ort_matmul_b32_gmacs": matmul_gmacs(32, h, v)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="40 steps")
    args = ap.parse_args()
    require_shared()
    if args.quick:
        args.steps = 40
    sentences = [l.split("\t")[0] for l in (TATOEBA / "test.tsv").read_text(encoding="utf-8").splitlines()]
    results = {}
    for kind, folder in (("fp32", args.fp32), ("int8", args.int8)):
        if not folder:
            continue
        for batch in (1, 32):
            r = profile(folder, batch, sentences, args.steps)
            results[f"{kind} b{batch}"] = r
            print(f"{kind} batch {batch}: {r['us_per_step']} us/step  {r['groups_us']}", flush=True)
    for kind, folder in (("fp32", args.fp32), ("int8", args.int8)):
        if folder:
            results[f"encoder {kind}"] = {f"b{b}_us": encoder_us(folder, b, sentences) for b in (1, 32)}
            print(f"encoder {kind}: {results[f'encoder {kind}']} us per run", flush=True)
    for kind, folder in (("fp32", args.fp32), ("int8", args.int8)):
        if folder:
            results[f"roofline {kind}"] = roofline(folder, results[f"{kind} b1"]["us_per_step"],
                                                   results[f"{kind} b32"]["us_per_step"])
            print(f"roofline {kind}: {results[f'roofline {kind}']}", flush=True)
    emit({"profile": results, "steps": args.steps, "machine": machine()})


if __name__ == "__main__":
    main()
