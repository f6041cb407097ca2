"""int8 dynamic quantization with onnxruntime's own tooling."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

# LSTM and MatMul carry nearly all weights. The output projection is a Gemm in the exported graph
# (its input is (B, H)); onnxruntime's dynamic quantizer rewrites every Gemm as MatMul + Add first
# (onnx_model.replace_gemm_with_matmul), so "MatMul" covers it: MatMulInteger in the int8 graph.
QUANTIZED_OPS = ["LSTM", "MatMul"]
# Weights are quantized to 7 bits (reduce_range). On x86 CPUs without VNNI, onnxruntime multiplies
# uint8 activations by int8 weights with vpmaddubsw, which adds two products in int16: 2 x 255 x 127
# overflows it and saturates, 2 x 255 x 64 = 32,640 does not. With 7-bit weights the integer
# arithmetic is exact on every x86 CPU, so a folder translates the same on all of them (8-bit weights
# gave a 0.085 probability error on an AVX2 CPU against 0.003 on a VNNI one: docs/benchmarks.md).
WEIGHT_LIMIT = 64


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer logs through the root logger (which installs a stderr handler on
    first use): 'Please consider to run pre-processing before quantization', twice per export. Its
    pre-processing (onnxruntime.quantization.quant_pre_process: shape inference, graph
    optimisation) has nothing to add for these graphs: tried on the quickstart model, the quantized
    graphs had the same quantized ops and sizes within 0.04% (docs/benchmarks.md). So that line is
    noise to our users."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers = [logging.NullHandler()]
    try:
        yield
    finally:
        root.handlers = handlers


def quantize_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():
        # MatMulConstBOnly: only products with a weight matrix; attention's two activation x
        # activation products (scores, context) stay fp32, where int8 would only add error
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
                         reduce_range=True, extra_options={"MatMulConstBOnly": True})


def quantized_op_counts(path: Path) -> dict[str, int]:
    """Counts of the quantized ops in a graph (DynamicQuantizeLSTM, MatMulInteger, ...)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        if node.op_type in ("DynamicQuantizeLSTM", "MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def float_weight_ops(path: Path) -> list[str]:
    """Ops that still multiply by an fp32 weight matrix (should be empty after quantization)."""
    import onnx

    m = onnx.load(str(path))
    inits = {i.name for i in m.graph.initializer if len(i.dims) >= 2 and i.data_type == onnx.TensorProto.FLOAT}
    return [n.op_type for n in m.graph.node if n.op_type in ("LSTM", "MatMul", "Gemm") and any(x in inits for x in n.input)]


def wide_int8_weights(path: Path) -> list[str]:
    """int8 weights beyond WEIGHT_LIMIT in magnitude: those could saturate on CPUs without VNNI
    (should be empty). An embedding's int8 rows (int8_embedding) are exempt: they are turned back
    into floats before any product, never multiplied in an integer kernel."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    return [i.name for i in m.graph.initializer if i.data_type == onnx.TensorProto.INT8 and i.name != EMBEDDING_ROWS
            and np.abs(numpy_helper.to_array(i).astype(np.int32)).max(initial=0) > WEIGHT_LIMIT]


EMBEDDING = "embedding.weight"  # (V, E) float32, as export/encoder_graph.py and step_graph.py name it
EMBEDDING_ROWS, EMBEDDING_SCALES = "embedding.weight_int8_rows", "embedding.weight_row_scales"


def int8_embedding(path: Path) -> None:
    """The graph's embedding table, (V, E) float32, as int8 rows with a float32 scale each
    (symmetric, 8 bits: row v ~ rows[v] * scales[v]): the lookup gathers a token's int8 row and its
    scale and multiplies them back into floats, so everything after it is as before. The two tables
    were 16 of an int8 folder's 22 MB (the default model); per row, a row's error is at most
    1/254 of its largest value (onnxruntime's quantizer would give the whole table one 8-bit
    scale). Measured on the 20-minute models (docs/benchmarks.md): BLEU within 0.35 of the fp32
    tables' either way, 93-97% of translations unchanged, the folder 22.0 -> 9.8 MB, cold start
    ~30 ms sooner."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(path))
    table = next(i for i in m.graph.initializer if i.name == EMBEDDING)
    weights = numpy_helper.to_array(table)  # (V, E)
    scales = np.abs(weights).max(axis=1, keepdims=True) / 127  # (V, 1)
    scales[scales == 0] = 1  # an all-zero row (<pad>): 0 at any scale
    rows = np.round(weights / scales).astype(np.int8)
    m.graph.initializer.remove(table)
    m.graph.initializer.extend([numpy_helper.from_array(rows, EMBEDDING_ROWS),
                                numpy_helper.from_array(scales.astype(np.float32), EMBEDDING_SCALES)])
    lookup = next(n for n in m.graph.node if n.op_type == "Gather" and n.input[0] == EMBEDDING)
    ids, out = lookup.input[1], lookup.output[0]
    position = list(m.graph.node).index(lookup)
    m.graph.node.remove(lookup)
    for k, node in enumerate([  # ids (...) -> int8 rows (..., E) and scales (..., 1) -> floats (..., E)
        helper.make_node("Gather", [EMBEDDING_ROWS, ids], [f"{out}_int8"], name="/embedding/Gather"),
        helper.make_node("Gather", [EMBEDDING_SCALES, ids], [f"{out}_scale"], name="/embedding/Gather_scale"),
        helper.make_node("Cast", [f"{out}_int8"], [f"{out}_unscaled"], name="/embedding/Cast", to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{out}_unscaled", f"{out}_scale"], [out], name="/embedding/Mul"),
    ]):
        m.graph.node.insert(position + k, node)
    onnx.save(m, str(path))


def int8_output_rows(decoder: Path, output_layer: Path, rows_decoder: Path, opset: int) -> None:
    """For a shortlist, after decoder.onnx is quantized: output_layer.onnx gathers its rows from
    decoder.onnx's own int8 projection (the same int8 values, scale and zero point; the bias fp32 as
    there), and the shortlist decoder multiplies by them as stored, with onnxruntime's
    DynamicQuantizeMatMul. So a batch on either decoder multiplies by the same weights (the whole
    vocabulary's rows give decoder.onnx's scores), and a batch-1 step reads K bytes a row, not 4K.
    (Quantized on its own, the output layer had a scale of its own and a uint8 bias: at batch 1 the
    1000+100 shortlist then left 80.5% of tatoeba's test translations as they were without it,
    against 91.2% now and in fp32: docs/benchmarks.md, "Format 5".)"""
    import onnx
    from onnx import helper, numpy_helper

    from export.step_graph import output_layer_graph

    whole = onnx.load(str(decoder))
    inits = {i.name: i for i in whole.graph.initializer}
    matmul = next(n for n in whole.graph.node if n.op_type == "MatMulInteger" and n.name.startswith("/out/"))
    weight, zero_point = inits[matmul.input[1]], inits[matmul.input[3]]  # (H, V) int8, its zero point
    scale = inits[matmul.input[1].removesuffix("_quantized") + "_scale"]  # as the quantizer names it
    add = next(n for n in whole.graph.node if n.name == "/out/Add")
    bias = numpy_helper.to_array(inits[add.input[1]])
    layer = output_layer_graph({"out.weight": numpy_helper.to_array(weight).T, "out.bias": bias}, opset)
    set_metadata_like(layer, whole)
    onnx.save(layer, str(output_layer))

    step = onnx.load(str(rows_decoder))
    matmul = next(n for n in step.graph.node if n.name == "/out/MatMul")
    position = list(step.graph.node).index(matmul)
    step.graph.node.remove(matmul)
    step.graph.node.insert(position, helper.make_node(
        "DynamicQuantizeMatMul", [matmul.input[0], "out_weight", "out_weight_scale", "out_weight_zero_point"],
        list(matmul.output), name="/out/DynamicQuantizeMatMul", domain="com.microsoft"))
    for name, source in (("out_weight_scale", scale), ("out_weight_zero_point", zero_point)):
        init = onnx.TensorProto()
        init.CopyFrom(source)
        init.name = name
        step.graph.initializer.append(init)
    next(i for i in step.graph.input if i.name == "out_weight").type.tensor_type.elem_type = weight.data_type
    if not any(o.domain == "com.microsoft" for o in step.opset_import):
        step.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(step, str(rows_decoder))


def set_metadata_like(model, source) -> None:
    """model's metadata (format_version, producer) as source's."""
    del model.metadata_props[:]
    for prop in source.metadata_props:
        model.metadata_props.add().CopyFrom(prop)
