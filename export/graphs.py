"""Torch modules shaped like the ONNX graphs, and their export (torch imported inside functions)."""
from __future__ import annotations

import warnings
from pathlib import Path

from runtime.model_format import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_INPUTS, ENCODER_OUTPUTS, FORMAT_VERSION

DEFAULT_OPSET = 17


def _wrappers():
    import torch
    import torch.nn as nn

    class EncoderGraph(nn.Module):
        """src_ids (B, S) -> hidden, cell (L, B, H) over the padded batch.

        Packing is not traced (the TorchScript exporter mis-exports a packed LSTM whose output
        sequence is unused); `wire_sequence_lens` gives every ONNX LSTM node the lengths instead,
        so padding never reaches the state, as with packing in PyTorch.
        """

        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, src_ids):
            _, (hidden, cell) = self.encoder.lstm(self.encoder.embedding(src_ids))
            return hidden, cell

    class DecoderStepGraph(nn.Module):
        """prev_ids (B,), hidden, cell -> log_probs (B, V), new hidden, cell, next_ids (B,).

        ArgMax sits inside the graph so a GPU runtime copies only B token ids per greedy step;
        log_probs serves beam search without a softmax on the host. (Format 1 also returned the
        raw logits, which no reader used: one (B, V) output less to hand over per step.)
        """

        def __init__(self, decoder):
            super().__init__()
            self.decoder = decoder

        def forward(self, prev_ids, hidden, cell):
            logits, hidden, cell = self.decoder.step(prev_ids, hidden, cell)
            return torch.log_softmax(logits, dim=-1), hidden, cell, logits.argmax(-1)

    return EncoderGraph, DecoderStepGraph


def export_graphs(model, out_dir: Path, opset: int = DEFAULT_OPSET) -> tuple[Path, Path]:
    """Writes encoder.onnx and decoder.onnx (fp32, dynamic batch and source length)."""
    import torch

    from runtime.model_format import DECODER_FILE, ENCODER_FILE

    EncoderGraph, DecoderStepGraph = _wrappers()
    # wrappers are eval() too: export restores each module's mode on exit, and a wrapper left in
    # training mode would switch the wrapped model's dropout back on
    model = model.eval().cpu()
    cfg = model.cfg
    src = torch.randint(4, cfg.src_vocab_size, (3, 7))
    hidden = torch.zeros(cfg.layers, 3, cfg.hidden_dim)
    enc_path, dec_path = out_dir / ENCODER_FILE, out_dir / DECODER_FILE
    with torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter is chosen on purpose (exact LSTM parity); its notices are noise here,
        # and the batch-size caveat does not apply: zero initial states are built per batch
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EncoderGraph(model.encoder).eval(), (src,), str(enc_path), dynamo=False, opset_version=opset,
            input_names=[ENCODER_INPUTS[0]], output_names=list(ENCODER_OUTPUTS),
            dynamic_axes={"src_ids": {0: "batch", 1: "src_len"}, "hidden": {1: "batch"}, "cell": {1: "batch"}},
        )
        torch.onnx.export(
            DecoderStepGraph(model.decoder).eval(), (torch.tensor([2, 5, 9]), hidden, hidden.clone()), str(dec_path),
            dynamo=False, opset_version=opset, input_names=list(DECODER_INPUTS), output_names=list(DECODER_OUTPUTS),
            dynamic_axes={"prev_ids": {0: "batch"}, "hidden": {1: "batch"}, "cell": {1: "batch"},
                          "log_probs": {0: "batch"}, "new_hidden": {1: "batch"},
                          "new_cell": {1: "batch"}, "next_ids": {0: "batch"}},
        )
    wire_sequence_lens(enc_path)
    for path in (enc_path, dec_path):
        set_metadata(path, {"format_version": str(FORMAT_VERSION), "producer": "seq2seq-edge"})
    return enc_path, dec_path


def wire_sequence_lens(path: Path) -> None:
    """Adds the src_lengths input (B,) int64 and feeds it, as int32, to every LSTM node's
    sequence_lens: each sentence's final state is taken at its own last token."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(path))
    lstms = [n for n in m.graph.node if n.op_type == "LSTM"]
    if not lstms:
        raise RuntimeError("encoder graph has no LSTM node to give sequence lengths")
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
