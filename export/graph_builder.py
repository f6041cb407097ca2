"""What the graphs built node by node share (the encoder: export/encoder_graph.py; the decoder step
and the output layer: export/step_graph.py): a builder that adds nodes and initializers in order,
PyTorch's LSTM weights in ONNX's layout, the tensors' types and shapes, and the ONNX model around
a graph. Node names carry the PyTorch module names (/lstm/, /attention/, /out/) for the profiler's
groups (benchmarks/profile_step.py)."""
from __future__ import annotations

import numpy as np

# PyTorch's LSTM gates are ordered i, f, g, o; ONNX's are i, o, f, c (g = c)
_ONNX_GATE_ORDER = (0, 3, 1, 2)


def _onnx_gates(w: np.ndarray) -> np.ndarray:
    return np.concatenate([np.split(w, 4)[g] for g in _ONNX_GATE_ORDER])


def lstm_weights(weights: dict, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nn.LSTM layer `layer` -> ONNX LSTM W (1, 4H, in), R (1, 4H, H), B (1, 8H)."""
    w = _onnx_gates(weights[f"lstm.weight_ih_l{layer}"])[None]
    r = _onnx_gates(weights[f"lstm.weight_hh_l{layer}"])[None]
    b = np.concatenate([_onnx_gates(weights[f"lstm.bias_ih_l{layer}"]), _onnx_gates(weights[f"lstm.bias_hh_l{layer}"])])[None]
    return w, r, b


def tensor_shapes(cfg, scores: int | str) -> dict:
    """Each graph tensor's (ONNX element type, shape), named dimensions dynamic; new_* outputs as
    their parts. scores: the log_probs' width (the vocabulary, or "candidates" with a shortlist)."""
    from onnx import TensorProto

    f32, i64, h = TensorProto.FLOAT, TensorProto.INT64, cfg.hidden_dim
    return {
        "src_ids": (i64, ["batch", "src_len"]), "src_lengths": (i64, ["batch"]),
        "prev_ids": (i64, ["batch"]), "next_ids": (i64, ["batch"]), "hidden": (f32, [cfg.layers, "batch", h]),
        "cell": (f32, [cfg.layers, "batch", h]), "input_feed": (f32, ["batch", h]), "memory": (f32, ["batch", "src_len", h]),
        "keys": (f32, ["batch", h, "src_len"]), "score_bias": (f32, ["batch", 1, "src_len"]),
        "out_weight": (f32, [h, "candidates"]), "out_bias": (f32, ["candidates"]), "candidates": (i64, ["candidates"]),
        "log_probs": (f32, ["batch", scores]),
    }


class GraphBuilder:
    """One graph's nodes and initializers, added in order (so in topological order)."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name: str, value: np.ndarray) -> str:
        """An initializer -> its name. A name used again must hold the same value (one tensor)."""
        from onnx import numpy_helper

        same = [i for i in self.inits if i.name == name]
        if not same:
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        elif not np.array_equal(numpy_helper.to_array(same[0]), value):
            raise ValueError(f"initializer {name} is already another tensor")
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))

    def model(self, name: str, inputs, outputs, shapes: dict, opset: int):
        """-> the ModelProto of the graph with these inputs and outputs (names; types and shapes
        from `shapes`, as tensor_shapes gives them)."""
        from onnx import helper

        info = lambda n: helper.make_tensor_value_info(n, *shapes[n.removeprefix("new_")])
        graph = helper.make_graph(self.nodes, name, [info(n) for n in inputs], [info(n) for n in outputs], self.inits)
        return onnx_model(graph, opset)


def onnx_model(graph, opset: int):
    """The ModelProto around a graph. IR version 8 is what torch's exporter gave the traced encoder
    at opset 17: the oldest onnxruntime (and onnxruntime-web) that runs one of the graphs runs all."""
    from onnx import helper

    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="seq2seq-edge",
                             ir_version=8)
