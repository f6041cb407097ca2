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

    # output_layer.onnx only gathers rows: its weights are stored int8 and dequantized as they are
    # gathered (once per batch); the step multiplies by those fp32 rows
    ops = ["Gather"] if src.stem == "output_layer" else QUANTIZED_OPS
    with _quiet_root_logger():
        # MatMulConstBOnly: only products with a weight matrix; attention's two activation x
        # activation products (scores, context) stay fp32, where int8 would only add error
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops,
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
    (should be empty)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    return [i.name for i in m.graph.initializer if i.data_type == onnx.TensorProto.INT8
            and np.abs(numpy_helper.to_array(i).astype(np.int32)).max(initial=0) > WEIGHT_LIMIT]


def int8_output_rows(output_layer: Path, decoder: Path) -> None:
    """For a shortlist: the output layer hands the decoder its rows as the quantizer stored them (uint8
    with the weight's scale and zero point), not dequantized, and the decoder multiplies by them with
    onnxruntime's DynamicQuantizeMatMul. A batch-1 step then reads K bytes a row instead of 4K: with
    fp32 rows a shortlist read as many bytes as the int8 projection over the whole vocabulary."""
    import onnx
    from onnx import helper

    layer = onnx.load(str(output_layer))
    dequantize = next(n for n in layer.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == "rows")
    rows, scale, zero_point = dequantize.input
    layer.graph.node.remove(dequantize)
    next(n for n in layer.graph.node if n.output[0] == "out_weight").input[0] = rows
    out = next(o for o in layer.graph.output if o.name == "out_weight")
    inits = {i.name: i for i in layer.graph.initializer}
    out.type.tensor_type.elem_type = inits[zero_point].data_type
    onnx.save(layer, str(output_layer))

    step = onnx.load(str(decoder))
    matmul = next(n for n in step.graph.node if n.name == "/out/MatMul")
    position = list(step.graph.node).index(matmul)
    step.graph.node.remove(matmul)
    step.graph.node.insert(position, helper.make_node(
        "DynamicQuantizeMatMul", [matmul.input[0], "out_weight", "out_weight_scale", "out_weight_zero_point"],
        list(matmul.output), name="/out/DynamicQuantizeMatMul", domain="com.microsoft"))
    for name, source in (("out_weight_scale", scale), ("out_weight_zero_point", zero_point)):
        init = onnx.TensorProto()
        init.CopyFrom(inits[source])
        init.name = name
        step.graph.initializer.append(init)
    next(i for i in step.graph.input if i.name == "out_weight").type.tensor_type.elem_type = inits[zero_point].data_type
    if not any(o.domain == "com.microsoft" for o in step.opset_import):
        step.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(step, str(decoder))

