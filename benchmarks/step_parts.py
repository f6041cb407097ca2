"""What a batch-1 decoder step is made of, node by node, and what a fixed shortlist saves.

- nodes: each node of the decoder graph as onnxruntime optimised it (int8: DynamicQuantizeLSTM,
  DynamicQuantizeMatMul, ...) alone in a session of its own, run hot on a real step's inputs, minus
  an empty session's run; the whole step; and the heaviest nodes one after the other (their weights
  then share the caches, as in the step). For decoder.onnx and, in a fixed shortlist folder,
  decoder_shortlist.onnx.
- kernel: the output projection's kernel alone at batch 1 (int8, as the export quantizes it; the
  model's hidden size by N columns) for several N: what scoring fewer target ids saves.
- translate: the folder with its shortlist against itself without (--no-shortlist), in one process,
  passes interleaved: sentences per second one at a time and in batches of 32 and 128, and the
  share of translations that stay the same.

One process, one shared onnxruntime pool (as `runtime translate` runs).

    python benchmarks/step_parts.py --folder RUN/onnx-int8
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from common import TATOEBA, emit, machine, require_shared

HEAVY = 4  # nodes timed one after the other


def _session(model_bytes: bytes, optimize: bool = True):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.use_per_session_threads = False
    opts.log_severity_level = 3
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def _us(run, repeat: int, passes: int = 5) -> float:
    """Median over passes of the mean time of `repeat` calls (after a warm-up), µs."""
    times = []
    for _ in range(passes):
        for _ in range(max(1, repeat // 10)):
            run()
        start = time.perf_counter()
        for _ in range(repeat):
            run()
        times.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(times)


def _step_inputs(t, text: str) -> dict:
    """A real step's inputs: the text encoded, then one step of the folder's own decoder."""
    src = np.array([t.encode(text)[0]])
    state = t.encoder(src, np.array([src.shape[1]]))
    _, _, state = t.decoder.step(np.array([2]), state)
    return {**state, "prev_ids": np.array([5], dtype=np.int64)}


def nodes(folder: Path, graph: str, feeds: dict, repeat: int) -> dict:
    """Each node of the optimised graph alone, the whole step, the heaviest in sequence (µs)."""
    import onnx
    from onnx import helper

    from runtime.sessions import make_session

    with tempfile.TemporaryDirectory() as tmp:
        whole = make_session(folder / graph, "cpu", None)  # its weights file beside it, as the runtime reads it
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.use_per_session_threads = False
        opts.log_severity_level = 3
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        model = onnx.load(str(folder / graph))
        if any(n.op_type == "Loop" for n in model.graph.node):  # format 8: the step inside the Loop, node by node
            from export.step_graph import step_of

            model = step_of(model)
        ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        optimized = onnx.load(opts.optimized_model_filepath)
    g = optimized.graph
    inputs = {i.name: feeds[i.name] for i in g.input}
    names = [x for n in g.node for x in n.output if x]
    every = onnx.ModelProto()
    every.CopyFrom(optimized)
    del every.graph.output[:]
    every.graph.output.extend(helper.make_empty_tensor_value_info(x) for x in names)
    values = dict(inputs)
    values.update(zip(names, _session(every.SerializeToString(), optimize=False).run(names, inputs)))
    inits = {i.name: i for i in g.initializer}

    def alone(node):
        args = [x for x in dict.fromkeys(node.input) if x and x not in inits]
        info = [helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(values[x].dtype), values[x].shape)
                for x in args]
        one = helper.make_graph([node], "one", info, [helper.make_empty_tensor_value_info(x) for x in node.output if x],
                                [inits[x] for x in dict.fromkeys(node.input) if x in inits])
        model = helper.make_model(one, opset_imports=list(optimized.opset_import))
        model.ir_version = optimized.ir_version
        session = _session(model.SerializeToString(), optimize=False)
        feeds_ = {x: values[x] for x in args}
        return lambda: session.run(None, feeds_)

    empty = helper.make_model(helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "empty",
                                                [helper.make_tensor_value_info("a", 1, [1])],
                                                [helper.make_tensor_value_info("b", 1, [1])]),
                              opset_imports=[helper.make_opsetid("", 17)])
    empty_session = _session(empty.SerializeToString())
    base = _us(lambda: empty_session.run(None, {"a": np.zeros(1, np.float32)}), repeat)
    runs = {f"{n.op_type} {n.name}": alone(n) for n in g.node}
    per_node = {name: round(_us(run, repeat) - base, 1) for name, run in runs.items()}
    heavy = sorted(per_node, key=per_node.get, reverse=True)[:HEAVY]
    in_sequence = round(_us(lambda: [runs[n]() for n in heavy], repeat) - HEAVY * base, 1)
    step_names = [o.name for o in whole.get_outputs() if o.name not in ("log_probs", "step_ids")]
    step_feeds = {i.name: feeds[i.name] for i in whole.get_inputs()}
    return {"step_us": round(_us(lambda: whole.run(step_names, step_feeds), repeat), 1),
            "nodes_alone_us": round(sum(per_node.values()), 1), "heaviest_alone_us": round(sum(per_node[n] for n in heavy), 1),
            "heaviest_in_sequence_us": in_sequence, "per_node_us": per_node}


def kernel(hidden: int, columns: list[int], repeat: int) -> dict:
    """The int8 output projection alone at batch 1, hidden x N (random weights, quantized as the export does)."""
    import onnx
    from onnx import helper, numpy_helper

    from export.quantize import quantize_int8

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, hidden)).astype(np.float32)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in columns:
            w = numpy_helper.from_array((rng.standard_normal((hidden, n)) * 0.05).astype(np.float32), "w")
            graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "projection",
                                      [helper.make_tensor_value_info("x", 1, [1, hidden])],
                                      [helper.make_tensor_value_info("y", 1, [1, n])], [w])
            fp32, int8 = Path(tmp) / f"{n}.onnx", Path(tmp) / f"{n}.int8.onnx"
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fp32))
            quantize_int8(fp32, int8)
            session = _session(int8.read_bytes())
            out[n] = round(_us(lambda: session.run(None, {"x": x}), repeat), 1)
    return out


def translate(folder: Path, texts: list[str], passes: int) -> dict:
    """The folder with its shortlist against without, passes interleaved: sent/s and identical share."""
    from runtime import Translator

    both = {"with": Translator(folder, device="cpu"), "without": Translator(folder, device="cpu", shortlist=False)}
    for t in both.values():
        t.translate(texts[:8])
    out = {}
    for batch, n in ((1, min(300, len(texts))), (32, len(texts)), (128, len(texts))):
        rates, outs = {k: [] for k in both}, {}
        for _ in range(passes):
            for k, t in both.items():
                start = time.perf_counter()
                outs[k] = [t.translate(s) for s in texts[:n]] if batch == 1 else t.translate(texts[:n], batch_size=batch)
                rates[k].append(n / (time.perf_counter() - start))
        ratios = [a / b for a, b in zip(rates["with"], rates["without"])]
        out[f"b{batch}"] = {"with_sent_per_s": round(statistics.median(rates["with"]), 1),
                            "without_sent_per_s": round(statistics.median(rates["without"]), 1),
                            "with_over_without": round(statistics.median(ratios), 3),
                            "identical": round(float(np.mean([a == b for a, b in zip(outs["with"], outs["without"])])), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", required=True, help="a model folder (with a fixed shortlist for the translate part)")
    ap.add_argument("--columns", default="500,1000,2000,4000,5120,8000,16000", help="the kernel's N")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="few repeats, 60 sentences")
    args = ap.parse_args()
    require_shared()
    import runtime
    from runtime import Translator
    from runtime.model_format import DECODER_FILE, DECODER_SHORTLIST_FILE, fixed_shortlist

    runtime.share_thread_pool()
    folder = Path(args.folder)
    repeat = 20 if args.quick else 300
    texts = [line.split("\t")[0] for line in (TATOEBA / "test.tsv").read_text(encoding="utf-8").splitlines()]
    texts = texts[:60] if args.quick else texts
    t = Translator(folder, device="cpu", shortlist=False)
    feeds = _step_inputs(t, "Where is the station?")
    graphs = [DECODER_FILE] + ([DECODER_SHORTLIST_FILE] if fixed_shortlist(t.config) else [])
    result = {"nodes": {g: nodes(folder, g, feeds, repeat) for g in graphs},
              "kernel_int8_b1_us": kernel(t.config.hidden_dim, [int(n) for n in args.columns.split(",")], repeat)}
    if len(graphs) == 2:
        result["translate"] = translate(folder, texts, 2 if args.quick else args.passes)
    for g, r in result["nodes"].items():
        print(f"{g}: step {r['step_us']} us; nodes alone {r['nodes_alone_us']}, the {HEAVY} heaviest "
              f"{r['heaviest_alone_us']} alone and {r['heaviest_in_sequence_us']} in sequence")
    print("int8 projection at batch 1, us by columns:", result["kernel_int8_b1_us"])
    if "translate" in result:
        print("with the shortlist / without:", result["translate"])
    emit({**result, "folder": str(folder), "machine": machine()})


if __name__ == "__main__":
    main()
