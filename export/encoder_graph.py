"""The encoder as an ONNX graph, built node by node from the weights, as the decoder step is
(export/step_graph.py):

    x_0 = Gather(E, src_ids) as (S, B, E)
    per layer k: y, h_k, c_k = LSTM(x_k, sequence_lens = src_lengths); x_{k+1} = y   (S, B, H)
    hidden, cell = [h_0; h_1; ...], [c_0; c_1; ...]                               (L, B, H)
    attention: memory = x_L as (B, S, H); keys = x_L W_a as (B, H, S)
               score_bias = -inf where position >= src_length, else 0             (B, 1, S)

Each LSTM takes the sentences' lengths as its sequence_lens: a sentence's final state is taken at
its own last token and its outputs after it are 0, as PyTorch's packed sequence gives, so it gets
the same state alone or in a padded batch. Traced from PyTorch (until 2026-11-30) the encoder was
37 nodes once onnxruntime had optimised it (shapes, slices and zero initial states around each
LSTM, the padding mask from the lengths in 15 nodes); built here it is 18, with the same outputs
bit for bit, a session that starts 15-20 ms sooner (the cold start of `runtime translate`) and a
run at batch 1 a few percent shorter (docs/benchmarks.md) — and no torch exporter involved.
"""
from __future__ import annotations

import numpy as np

from export.graph_builder import GraphBuilder, lstm_weights, tensor_shapes
from runtime.state import ATTENTION_LUONG, ENCODER_INPUTS, encoder_outputs


def encoder_graph(weights: dict, cfg, opset: int):
    """weights: the encoder's state_dict as float32 numpy arrays, with attention also the attention's
    "attention.linear_in.weight" (W_a, H x H); cfg: trainer.config.ModelConfig."""
    from onnx import TensorProto

    graph = GraphBuilder()
    const, node = graph.const, graph.node
    attention = cfg.attention == ATTENTION_LUONG
    src_ids, src_lengths = ENCODER_INPUTS
    node("Gather", [const("embedding.weight", weights["embedding.weight"]), src_ids], ["emb"], "/embedding/Gather")  # (B, S, E)
    node("Transpose", ["emb"], ["x_0"], "/Transpose", perm=[1, 0, 2])  # (S, B, E): ONNX LSTM's layout
    node("Cast", [src_lengths], ["lengths_i32"], "/Cast", to=TensorProto.INT32)
    axis1 = const("axis1", np.array([1], dtype=np.int64))
    for k in range(cfg.layers):
        w, r, b = lstm_weights(weights, k)
        sequence = k < cfg.layers - 1 or attention  # the top layer's outputs are the memory
        node("LSTM", [f"x_{k}", const(f"lstm.W_{k}", w), const(f"lstm.R_{k}", r), const(f"lstm.B_{k}", b), "lengths_i32"],
             [f"y_{k}" if sequence else "", f"h_{k}", f"c_{k}"], f"/lstm/LSTM_{k}", hidden_size=cfg.hidden_dim)
        if sequence:
            node("Squeeze", [f"y_{k}", axis1], [f"x_{k + 1}"], f"/lstm/Squeeze_{k}")  # (S, 1, B, H) -> (S, B, H)
    node("Concat", [f"h_{k}" for k in range(cfg.layers)], ["hidden"], "/lstm/Concat_hidden", axis=0)
    node("Concat", [f"c_{k}" for k in range(cfg.layers)], ["cell"], "/lstm/Concat_cell", axis=0)
    if attention:
        top = f"x_{cfg.layers}"
        node("Transpose", [top], ["memory"], "/Transpose_memory", perm=[1, 0, 2])  # (B, S, H)
        w_a = const("attention.linear_in.weight", weights["attention.linear_in.weight"])
        node("MatMul", [top, w_a], ["keys_sbh"], "/attention/MatMul")  # (S, B, H): row s of sentence b is m_s^T W_a
        node("Transpose", ["keys_sbh"], ["keys"], "/attention/Transpose", perm=[1, 2, 0])  # (B, H, S)
        node("Shape", [src_ids], ["src_shape"], "/attention/Shape")
        node("Gather", ["src_shape", const("one", np.array(1, dtype=np.int64))], ["src_len"], "/attention/Gather")  # S
        node("Range", [const("zero", np.array(0, dtype=np.int64)), "src_len", "one"], ["positions"], "/attention/Range")
        node("Unsqueeze", [src_lengths, const("axes12", np.array([1, 2], dtype=np.int64))], ["lengths_b11"],
             "/attention/Unsqueeze")  # (B, 1, 1)
        node("GreaterOrEqual", ["positions", "lengths_b11"], ["padding"], "/attention/GreaterOrEqual")  # (B, 1, S)
        node("Where", ["padding", const("minus_inf", np.array(-np.inf, dtype=np.float32)),
                       const("zero_f", np.array(0.0, dtype=np.float32))], ["score_bias"], "/attention/Where")
    return graph.model("encoder", ENCODER_INPUTS, encoder_outputs(cfg.attention), tensor_shapes(cfg, cfg.tgt_vocab_size),
                       opset)
