"""int8 dynamic quantization with onnxruntime's own tooling."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

# LSTM and MatMul carry nearly all weights; the output projection is a MatMul because the
# decoder applies its Linear to a (B, 1, H) tensor (onnxruntime does not quantize Gemm dynamically).
QUANTIZED_OPS = ["LSTM", "MatMul"]


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer logs through the root logger (which installs a stderr handler on
    first use): 'Please consider to run pre-processing before quantization', twice per export. Its
    pre-processing (onnxruntime.quantization.quant_pre_process: shape inference, graph
    optimisation) has nothing to add for these graphs: tried on the quickstart model, the quantized
    graphs had the same quantized ops (DynamicQuantizeLSTM x2; + MatMulInteger for the output
    projection) and sizes within 0.04%. So that line is noise to our users."""
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
                         extra_options={"MatMulConstBOnly": True})


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
