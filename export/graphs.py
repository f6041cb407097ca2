"""The model's three graphs: the encoder traced from PyTorch, the one-step decoder and the output
layer built from the weights (export/step_graph.py); torch imported inside functions."""
from __future__ import annotations

import warnings
from pathlib import Path

from runtime.model_format import FORMAT_VERSION
from runtime.state import ENCODER_INPUTS, encoder_outputs

DEFAULT_OPSET = 17


def _encoder_wrapper():
    import torch.nn as nn

    class EncoderGraph(nn.Module):
        """src_ids (B, S), src_lengths (B,) -> hidden, cell (L, B, H) (, memory (B, S, H), keys
        (B, H, S), score_bias (B, 1, S)) over the padded batch.

        Packing is not traced (the TorchScript exporter mis-exports a packed LSTM whose output
        sequence is unused); `wire_sequence_lens` gives every ONNX LSTM node the lengths instead,
        so padding never reaches the state (and the memory is zero there), as with packing in PyTorch.
        """

        def __init__(self, model):
            super().__init__()
            self.encoder, self.attention = model.encoder, model.decoder.attention

        def forward(self, src_ids, src_lengths):
            memory, (hidden, cell) = self.encoder.lstm(self.encoder.embedding(src_ids))
            if not self.encoder.keep_memory:
                return hidden, cell
            source = self.attention.source_state(memory, src_lengths)
            return hidden, cell, memory, source["keys"], source["score_bias"]

    return EncoderGraph


def export_graphs(model, out_dir: Path, opset: int = DEFAULT_OPSET, shortlist: bool = False) -> tuple[Path, ...]:
    """Writes encoder.onnx (traced; dynamic batch and source length) and decoder.onnx (built node by
    node from the weights: export/step_graph.py), fp32; with a shortlist also output_layer.onnx,
    which gathers the output layer's rows, and decoder_shortlist.onnx, which takes them as inputs.
    -> the paths: encoder, decoder (, output layer, shortlist decoder)."""
    import onnx
    import torch

    from export.step_graph import decoder_step_graph, output_layer_graph
    from runtime.model_format import DECODER_FILE, DECODER_SHORTLIST_FILE, ENCODER_FILE, OUTPUT_LAYER_FILE

    # the wrapper is eval() too: export restores each module's mode on exit, and a wrapper left in
    # training mode would switch the wrapped model's dropout back on
    model = model.eval().cpu()
    cfg = model.cfg
    enc_out = encoder_outputs(cfg.attention)
    src = torch.randint(4, cfg.src_vocab_size, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    dynamic = {"hidden": {1: "batch"}, "cell": {1: "batch"}, "memory": {0: "batch", 1: "src_len"},
               "keys": {0: "batch", 2: "src_len"}, "score_bias": {0: "batch", 2: "src_len"}}
    enc_path, dec_path, out_path = out_dir / ENCODER_FILE, out_dir / DECODER_FILE, out_dir / OUTPUT_LAYER_FILE
    with torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter is chosen on purpose (exact LSTM parity); its notices are noise here,
        # and the batch-size caveat does not apply: zero initial states are built per batch
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _encoder_wrapper()(model).eval(), (src, lengths), str(enc_path), dynamo=False, opset_version=opset,
            input_names=list(ENCODER_INPUTS), output_names=list(enc_out),
            dynamic_axes={"src_ids": {0: "batch", 1: "src_len"}, "src_lengths": {0: "batch"},
                          **{n: dynamic[n] for n in enc_out}},
        )
    wire_sequence_lens(enc_path)
    weights = {k: v.detach().float().numpy() for k, v in model.decoder.state_dict().items()}
    onnx.save(decoder_step_graph(weights, cfg, opset), str(dec_path))
    paths = (enc_path, dec_path)
    if shortlist:
        rows_path = out_dir / DECODER_SHORTLIST_FILE
        onnx.save(output_layer_graph(weights, opset), str(out_path))
        onnx.save(decoder_step_graph(weights, cfg, opset, shortlist=True), str(rows_path))
        paths += (out_path, rows_path)
    for path in paths:
        set_metadata(path, {"format_version": str(FORMAT_VERSION), "producer": "seq2seq-edge"})
    return paths


def wire_sequence_lens(path: Path) -> None:
    """Adds the src_lengths input (B,) int64 and feeds it, as int32, to every LSTM node's
    sequence_lens: each sentence's final state is taken at its own last token."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(path))
    lstms = [n for n in m.graph.node if n.op_type == "LSTM"]
    if not lstms:
        raise RuntimeError("encoder graph has no LSTM node to give sequence lengths")
    if ENCODER_INPUTS[1] not in {i.name for i in m.graph.input}:  # the paper's encoder doesn't use it otherwise
        m.graph.input.append(helper.make_tensor_value_info(ENCODER_INPUTS[1], TensorProto.INT64, ["batch"]))
    m.graph.node.insert(0, helper.make_node("Cast", [ENCODER_INPUTS[1]], ["src_lengths_i32"], to=TensorProto.INT32))
    for node in lstms:
        while len(node.input) < 5:
            node.input.append("")
        node.input[4] = "src_lengths_i32"  # inputs: X, W, R, B, sequence_lens, initial_h, initial_c
    onnx.save(m, str(path))


def set_metadata(path: Path, props: dict[str, str]) -> None:
    import onnx

    m = onnx.load(str(path))
    existing = {p.key: p for p in m.metadata_props}
    for key, value in props.items():
        entry = existing.get(key) or m.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(m, str(path))  # small models: weights stay inside the file, no external data
