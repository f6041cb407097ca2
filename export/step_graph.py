"""The one-step decoder and the output layer as ONNX graphs, built node by node from the weights.

Traced from PyTorch the step had 73 nodes (Slice/Squeeze/Transpose/Constant around each LSTM
layer, the padding mask rebuilt from the lengths at every step). Built here it has 21 (23 with a
shortlist), each the one a reader expects (what a step costs, and why: docs/benchmarks.md, "Decoding
speed, format 4"):

    emb = Gather(E, prev_ids)                      (B, E)
    x = [emb; input_feed] as (1, B, E + H)         (attention: input feeding)
    per layer k: _, h_k, c_k = LSTM(x, h[k], c[k]); x = h_k      (1, B, H)
    attention:  q = h_top as (B, 1, H); scores = q @ keys + score_bias (B, 1, S)
                context = softmax(scores) @ memory; feed = tanh([context; q] @ W_c^T)   (B, H)
    logits = feed @ out_weight + out_bias          (B, K) over the batch's candidate ids
    log_probs = LogSoftmax(logits); next_ids = candidates[ArgMax(logits)]

With a shortlist the output layer's rows come in as inputs (out_weight (H, K), out_bias (K,),
candidates (K,)): once per batch output_layer.onnx gathers them, for the shortlist's candidates
(runtime/shortlist.py) or the whole vocabulary; without one the graph holds the projection (K = V).
Node names carry the PyTorch module names (/lstm/, /attention/, /out/) for the profiler's groups.
"""
from __future__ import annotations

import numpy as np

from export.graph_builder import GraphBuilder, lstm_weights, onnx_model, tensor_shapes
from runtime.model_format import FIXED_CANDIDATES
from runtime.state import ATTENTION_LUONG, LOG_PROBS_WIDTH, MAX_STEPS, STEP_IDS, decoder_inputs, decoder_outputs

# onnxruntime's CPU ArgMax walks a row one value at a time: over (32, 8000) logits it took 156 us, a
# fifth of a step. The same index from a vectorised ReduceMax over blocks of 64, ArgMax over the 125
# block maxima and ArgMax inside the winning block: 43 us (docs/benchmarks.md, "Profile").
ARGMAX_BLOCK = 64


def _blocked_argmax(node, const, logits: str, out: str, vocab: int, block: int) -> None:
    """out (B,) = ArgMax(logits (B, V), axis -1), exactly, ties to the first index as ArgMax does:
    the first maximal block holds the first maximal value, and ArgMax inside it finds that one."""
    node("Reshape", [logits, const("shape_blocks", np.array([0, vocab // block, block], dtype=np.int64))],
         ["blocks"], "/argmax/Reshape")  # (B, V / block, block)
    node("ReduceMax", ["blocks"], ["block_max"], "/argmax/ReduceMax", axes=[2], keepdims=0)  # (B, V / block)
    node("ArgMax", ["block_max"], ["best_block"], "/argmax/ArgMax_block", axis=1, keepdims=1)  # (B, 1)
    node("Unsqueeze", ["best_block", const("axis2", np.array([2], dtype=np.int64))], ["best_block3"], "/argmax/Unsqueeze")
    node("Expand", ["best_block3", const("block_shape", np.array([1, 1, block], dtype=np.int64))], ["block_index"],
         "/argmax/Expand")  # (B, 1, block)
    node("GatherElements", ["blocks", "block_index"], ["winner"], "/argmax/GatherElements", axis=1)  # (B, 1, block)
    node("ArgMax", ["winner"], ["within"], "/argmax/ArgMax_within", axis=2, keepdims=0)  # (B, 1)
    node("Mul", ["best_block", const("block_size", np.array(block, dtype=np.int64))], ["block_start"], "/argmax/Mul")
    node("Add", ["block_start", "within"], ["index"], "/argmax/Add")
    node("Squeeze", ["index", const("axis1", np.array([1], dtype=np.int64))], [out], "/argmax/Squeeze")  # (B,)


def decoder_step_graph(weights: dict, cfg, opset: int, shortlist: bool = False):
    """weights: the decoder's state_dict as float32 numpy arrays; cfg: trainer.config.ModelConfig.
    shortlist: the output layer's rows are inputs (out_weight, out_bias, candidates), else the graph
    holds the whole projection as constants (int8 in an int8 folder, prepacked by onnxruntime)."""
    h, layers, attention = cfg.hidden_dim, cfg.layers, cfg.attention == ATTENTION_LUONG
    graph = GraphBuilder()
    const, node = graph.const, graph.node
    node("Gather", [const("embedding.weight", weights["embedding.weight"]), "prev_ids"], ["emb"], "/embedding/Gather")
    x = "emb"
    if attention:
        node("Concat", ["emb", "input_feed"], ["lstm_input"], "/Concat", axis=1)  # (B, E + H)
        x = "lstm_input"
    node("Unsqueeze", [x, const("axis0", np.array([0], dtype=np.int64))], ["x_0"], "/lstm/Unsqueeze")  # (1, B, in)
    split = [f"{part}_{k}" for part in ("h", "c") for k in range(layers)]
    node("Split", ["hidden"], split[:layers], "/lstm/Split_hidden", axis=0)  # L x (1, B, H)
    node("Split", ["cell"], split[layers:], "/lstm/Split_cell", axis=0)
    for k in range(layers):
        w, r, b = lstm_weights(weights, k)
        node("LSTM", [f"x_{k}", const(f"lstm.W_{k}", w), const(f"lstm.R_{k}", r), const(f"lstm.B_{k}", b), "",
                      f"h_{k}", f"c_{k}"], ["", f"x_{k + 1}", f"cell_out_{k}"], f"/lstm/LSTM_{k}", hidden_size=h)
    node("Concat", [f"x_{k + 1}" for k in range(layers)], ["new_hidden"], "/lstm/Concat_hidden", axis=0)
    node("Concat", [f"cell_out_{k}" for k in range(layers)], ["new_cell"], "/lstm/Concat_cell", axis=0)
    top = f"x_{layers}"  # (1, B, H): the top layer's output
    if attention:
        node("Reshape", [top, const("shape_b1h", np.array([-1, 1, h], dtype=np.int64))], ["query"], "/attention/Reshape")
        node("MatMul", ["query", "keys"], ["raw_scores"], "/attention/MatMul")  # (B, 1, S)
        node("Add", ["raw_scores", "score_bias"], ["scores"], "/attention/Add")
        node("Softmax", ["scores"], ["weights"], "/attention/Softmax", axis=-1)
        node("MatMul", ["weights", "memory"], ["context"], "/attention/MatMul_1")  # (B, 1, H)
        node("Concat", ["context", "query"], ["joined"], "/attention/Concat", axis=-1)  # (B, 1, 2H)
        w_c = const("attention.linear_out.weight_t", weights["attention.linear_out.weight"].T)  # (2H, H)
        node("MatMul", ["joined", w_c], ["attentional_raw"], "/attention/linear_out/MatMul")
        node("Tanh", ["attentional_raw"], ["attentional"], "/attention/Tanh")
        top = "attentional"
    feed = "new_input_feed" if attention else "top"
    node("Reshape", [top, const("shape_bh", np.array([-1, h], dtype=np.int64))], [feed], "/Reshape")  # (B, H)
    # MatMul + Add, not Gemm: onnxruntime's quantizer rewrites a Gemm whose weight is an input into
    # a Transpose of that weight at every step
    if shortlist:
        weight, bias = "out_weight", "out_bias"
    else:
        weight, bias = const("out.weight_t", weights["out.weight"].T), const("out.bias", weights["out.bias"])
    node("MatMul", [feed, weight], ["raw_logits"], "/out/MatMul")  # (B, H) x (H, K)
    node("Add", ["raw_logits", bias], ["logits"], "/out/Add")
    node("LogSoftmax", ["logits"], ["log_probs"], "/LogSoftmax", axis=-1)
    column = "column" if shortlist else "next_ids"
    block = ARGMAX_BLOCK if not shortlist and cfg.tgt_vocab_size % ARGMAX_BLOCK == 0 else None
    if block:
        _blocked_argmax(node, const, "logits", column, cfg.tgt_vocab_size, block)
    else:
        node("ArgMax", ["logits"], [column], "/ArgMax", axis=-1, keepdims=0)
    if shortlist:
        node("Gather", ["candidates", "column"], ["next_ids"], "/out/Gather_ids")

    shapes = tensor_shapes(cfg, "candidates" if shortlist else cfg.tgt_vocab_size)
    return graph.model("decoder_step", decoder_inputs(cfg.attention, shortlist=shortlist), decoder_outputs(cfg.attention),
                       shapes, opset)


def output_layer_graph(weights: dict, opset: int):
    """candidates (K,) int64 -> out_weight (H, K), out_bias (K,): the rows of the output projection,
    gathered as whole rows (K contiguous copies, not K strided reads from each of H rows) and
    transposed once, so every step multiplies (B, H) x (H, K) without a transpose of its own.
    out.weight (V, H) float32, or int8 as an int8 decoder.onnx stores its projection (the rows
    then stay int8: export/quantize.py int8_output_rows)."""
    from onnx import TensorProto, helper, numpy_helper

    w = weights["out.weight"]  # (V, H)
    h = w.shape[1]
    inits = [numpy_helper.from_array(np.ascontiguousarray(w), "out.weight"),
             numpy_helper.from_array(weights["out.bias"], "out.bias")]
    nodes = [helper.make_node("Gather", ["out.weight", "candidates"], ["rows"], name="/out/Gather_weight", axis=0),
             helper.make_node("Transpose", ["rows"], ["out_weight"], name="/out/Transpose", perm=[1, 0]),
             helper.make_node("Gather", ["out.bias", "candidates"], ["out_bias"], name="/out/Gather_bias", axis=0)]
    f32, rows = TensorProto.FLOAT, helper.np_dtype_to_tensor_dtype(w.dtype)
    graph = helper.make_graph(nodes, "output_layer", [helper.make_tensor_value_info("candidates", TensorProto.INT64, ["candidates"])],
                              [helper.make_tensor_value_info("out_weight", rows, [h, "candidates"]),
                               helper.make_tensor_value_info("out_bias", f32, ["candidates"])], inits)
    return onnx_model(graph, opset)


def fixed_shortlist_decoder(decoder, candidates: np.ndarray):
    """decoder.onnx's ModelProto (fp32, or int8 as export/quantize.py left it) -> decoder_shortlist.onnx
    for a fixed shortlist (format 7): the same graph with its projection's columns and bias entries of
    `candidates` (K,) only, as constants (so onnxruntime prepacks them as it does the whole projection),
    and next_ids = candidates[ArgMax(logits)]. Cut from the exported decoder, not built again: an int8
    folder's rows keep decoder.onnx's own int8 values, scale and zero point, so each kept column's
    score is the whole decoder's, bit for bit (export/verify.py check_fixed_shortlist)."""
    from onnx import numpy_helper

    model = type(decoder)()
    model.CopyFrom(decoder)
    graph, k = model.graph, len(candidates)
    inits = {i.name: i for i in graph.initializer}
    # the projection: "/out/MatMul" (fp32) or the quantizer's "/out/MatMul_quant" (MatMulInteger)
    matmul = next(n for n in graph.node if n.name.startswith("/out/") and n.op_type in ("MatMul", "MatMulInteger"))
    add = next(n for n in graph.node if n.name == "/out/Add")
    for name, take in ((matmul.input[1], lambda w: w[:, candidates]), (add.input[1], lambda b: b[candidates])):
        rows = numpy_helper.from_array(np.ascontiguousarray(take(numpy_helper.to_array(inits[name]))), name)
        inits[name].CopyFrom(rows)
    builder = GraphBuilder()  # the ArgMax again, over K columns, mapped back to target ids
    if k % ARGMAX_BLOCK == 0:
        _blocked_argmax(builder.node, builder.const, "logits", "column", k, ARGMAX_BLOCK)
    else:
        builder.node("ArgMax", ["logits"], ["column"], "/ArgMax", axis=-1, keepdims=0)
    builder.node("Gather", [builder.const(FIXED_CANDIDATES, candidates.astype(np.int64)), "column"], ["next_ids"],
                 "/out/Gather_ids")
    kept = [n for n in graph.node if not n.name.startswith("/argmax/") and n.name != "/ArgMax"]
    used = {x for n in kept for x in n.input}
    del graph.node[:]
    graph.node.extend(kept + builder.nodes)
    stale = [i for i in graph.initializer if i.name not in used and i.name.startswith(("shape_blocks", "axis", "block_"))]
    for init in stale:  # the old ArgMax's constants (the new one adds its own)
        graph.initializer.remove(init)
    graph.initializer.extend(i for i in builder.inits if i.name not in {x.name for x in graph.initializer})
    log_probs = next(o for o in graph.output if o.name == "log_probs")
    log_probs.type.tensor_type.shape.dim[1].dim_value = k
    return model



def _renamed_nodes(nodes, rename) -> list:
    """Copies of nodes with each input and output name x as rename(x) (a Loop's body may not reuse a
    name of the graph around it: multi_step_decoder prefixes the step's own values, step_of strips it)."""
    out = []
    for n in nodes:
        copy = type(n)()
        copy.CopyFrom(n)
        copy.input[:] = [rename(x) for x in n.input]
        copy.output[:] = [rename(x) for x in n.output]
        out.append(copy)
    return out



def multi_step_decoder(step, eos_id: int):
    """A one-step decoder's ModelProto (a fixed shortlist's, fixed_shortlist_decoder) -> the decoder of
    format 8: the step inside an ONNX Loop, so greedy search at batch 1 runs in one call.

        max_steps (int64 scalar, default 1) and log_probs_width (default 0): initializers that are also
            graph inputs, so onnxruntime takes them as defaults (and they are not among the inputs
            get_inputs() lists)
        Loop(max_steps, prev_ids, hidden, cell[, input_feed]): the step, each step's next_ids the next
            one's prev_ids, memory, keys, score_bias and the weights from the outer graph; it goes on
            while no row's next id is <eos>
        next_ids, new_* = the last step's; step_ids (n, B) = every step's next_ids, n <= max_steps (up
            to and with the first <eos>); log_probs (B, min(K, log_probs_width)) = the last step's
            first columns: (B, 0) unless asked, so steps that need no log-probs copy none out of the Loop

    Its steps run the kernels runtime/decode.py runs one step at a time: the same ids (export/verify.py
    check_fixed_shortlist checks it), without a run call and the Python around it at every step
    (docs/benchmarks.md, format 8)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = step.graph
    carried = [i.name for i in graph.input if i.name in ("prev_ids", "hidden", "cell", "input_feed")]
    produced = {o for n in graph.node for o in n.output if o}
    new = {"prev_ids": "next_ids", "hidden": "new_hidden", "cell": "new_cell", "input_feed": "new_input_feed"}
    types = {v.name: v.type for v in list(graph.input) + list(graph.output)}
    value = lambda name, as_name: helper.make_value_info(as_name, types[name])
    local = set(carried) | produced  # its carried values are its own inputs
    body = _renamed_nodes(graph.node, lambda x: "step/" + x if x in local else x)
    body += [  # go on while no row wrote <eos> (ReduceMax over all rows: every opset from 14 on)
        helper.make_node("Equal", ["step/next_ids", "loop/eos_id"], ["step/is_eos"], name="/loop/Equal"),
        helper.make_node("Cast", ["step/is_eos"], ["step/eos_count"], name="/loop/Cast", to=TensorProto.INT64),
        helper.make_node("ReduceMax", ["step/eos_count"], ["step/any_eos"], name="/loop/ReduceMax", keepdims=0),
        helper.make_node("Equal", ["step/any_eos", "loop/zero"], ["step/go_on"], name="/loop/Equal_go_on"),
        helper.make_node("Identity", ["step/next_ids"], ["step/scan_ids"], name="/loop/Identity_ids"),
        helper.make_node("Slice", ["step/log_probs", "loop/zero1", LOG_PROBS_WIDTH, "loop/axis1"],
                         ["step/scan_log_probs"], name="/loop/Slice_log_probs"),
    ]
    body_graph = helper.make_graph(
        body, "step",
        [helper.make_tensor_value_info("step/iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("step/condition", TensorProto.BOOL, [])] + [value(c, "step/" + c) for c in carried],
        [helper.make_tensor_value_info("step/go_on", TensorProto.BOOL, [])]
        + [value(new[c], "step/" + new[c]) for c in carried]
        + [helper.make_tensor_value_info("step/scan_ids", TensorProto.INT64, ["batch"]),
           helper.make_tensor_value_info("step/scan_log_probs", TensorProto.FLOAT, ["batch", "width"])])
    nodes = [helper.make_node("Loop", [MAX_STEPS, "loop/true"] + carried,
                              [new[c] for c in carried] + [STEP_IDS, "log_probs"], name="/loop/Loop", body=body_graph)]
    constants = {MAX_STEPS: np.array(1), LOG_PROBS_WIDTH: np.array([0]), "loop/true": np.array(True),
                 "loop/zero": np.array(0), "loop/zero1": np.array([0]), "loop/axis1": np.array([1]),
                 "loop/eos_id": np.array([eos_id])}
    inits = list(graph.initializer) + [numpy_helper.from_array(v if v.dtype == bool else v.astype(np.int64), k)
                                       for k, v in constants.items()]
    inputs = list(graph.input) + [helper.make_tensor_value_info(MAX_STEPS, TensorProto.INT64, []),
                                  helper.make_tensor_value_info(LOG_PROBS_WIDTH, TensorProto.INT64, [1])]
    outputs = [o for o in graph.output if o.name != "log_probs"] + [
        helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["steps", "batch", "scores"]),
        helper.make_tensor_value_info(STEP_IDS, TensorProto.INT64, ["steps", "batch"])]
    model = helper.make_model(helper.make_graph(nodes, "decoder_steps", inputs, outputs, inits),
                              opset_imports=list(step.opset_import), ir_version=step.ir_version, producer_name=step.producer_name)
    for prop in step.metadata_props:  # format_version, producer
        model.metadata_props.add().CopyFrom(prop)
    return model


def step_of(decoder):
    """A format 8 decoder (multi_step_decoder's ModelProto) -> the step inside its Loop as a graph of
    its own, as fixed_shortlist_decoder gave it (format 7): for benchmarks/step_parts.py's node by
    node table, and tests' format 7 folders."""
    from onnx import TensorProto, helper

    graph = decoder.graph
    loop = next(n for n in graph.node if n.op_type == "Loop")
    body = next(a.g for a in loop.attribute if a.name == "body")
    # without the Loop's own nodes (its condition, its scans)
    nodes = _renamed_nodes([n for n in body.node if not n.name.startswith("/loop/")], lambda x: x.removeprefix("step/"))
    inputs = [i for i in graph.input if i.name not in (MAX_STEPS, LOG_PROBS_WIDTH)]
    outputs = [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["batch", "scores"])] + [
        o for o in graph.output if o.name not in ("log_probs", STEP_IDS)]
    inits = [i for i in graph.initializer if not i.name.startswith("loop/") and i.name not in (MAX_STEPS, LOG_PROBS_WIDTH)]
    model = helper.make_model(helper.make_graph(nodes, "decoder_step", inputs, outputs, inits),
                              opset_imports=list(decoder.opset_import), ir_version=decoder.ir_version,
                              producer_name=decoder.producer_name)
    for prop in decoder.metadata_props:
        model.metadata_props.add().CopyFrom(prop)
    return model
