"""Torch modules shaped like the ONNX graphs, and their export (torch imported inside functions)."""
from __future__ import annotations

import warnings
from pathlib import Path

from runtime.model_format import FORMAT_VERSION
from runtime.state import ENCODER_INPUTS, STATE_AXIS, decoder_inputs, decoder_outputs, encoder_outputs

DEFAULT_OPSET = 17


def _wrappers():
    import torch
    import torch.nn as nn

    class EncoderGraph(nn.Module):
        """src_ids (B, S) -> hidden, cell (L, B, H) (, memory (B, S, H)) over the padded batch.

        Packing is not traced (the TorchScript exporter mis-exports a packed LSTM whose output
        sequence is unused); `wire_sequence_lens` gives every ONNX LSTM node the lengths instead,
        so padding never reaches the state (and the memory is zero there), as with packing in PyTorch.
        """

        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, src_ids):
            memory, (hidden, cell) = self.encoder.lstm(self.encoder.embedding(src_ids))
            return (hidden, cell, memory) if self.encoder.keep_memory else (hidden, cell)

    class DecoderStepGraph(nn.Module):
        """prev_ids (B,), the state's parts -> log_probs (B, V), new hidden, cell, next_ids (B,)
        (, new input_feed (B, H)).

        ArgMax sits inside the graph so a GPU runtime copies only B token ids per greedy step;
        log_probs serves beam search without a softmax on the host. (Format 1 also returned the
        raw logits, which no reader used: one (B, V) output less to hand over per step.)
        """

        def __init__(self, decoder, state_names):
            super().__init__()
            self.decoder, self.state_names = decoder, state_names

        def forward(self, prev_ids, *state):
            logits, new = self.decoder.step(prev_ids, dict(zip(self.state_names, state)))
            extra = (new["input_feed"],) if "input_feed" in new else ()
            return (torch.log_softmax(logits, dim=-1), new["hidden"], new["cell"], logits.argmax(-1)) + extra

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
    enc_out, dec_in, dec_out = encoder_outputs(cfg.attention), decoder_inputs(cfg.attention), decoder_outputs(cfg.attention)
    src = torch.randint(4, cfg.src_vocab_size, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    with torch.no_grad():
        example = model.encoder(src, lengths)  # a state of the right shapes for tracing the decoder

    def dynamic(name: str) -> dict:  # a tensor's dynamic axes: the batch (and the memory's source length)
        base = name.removeprefix("new_")
        return {0: "batch", 1: "src_len"} if base == "memory" else {STATE_AXIS.get(base, 0): "batch"}

    enc_path, dec_path = out_dir / ENCODER_FILE, out_dir / DECODER_FILE
    with torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter is chosen on purpose (exact LSTM parity); its notices are noise here,
        # and the batch-size caveat does not apply: zero initial states are built per batch
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EncoderGraph(model.encoder).eval(), (src,), str(enc_path), dynamo=False, opset_version=opset,
            input_names=[ENCODER_INPUTS[0]], output_names=list(enc_out),
            dynamic_axes={"src_ids": {0: "batch", 1: "src_len"}, **{n: dynamic(n) for n in enc_out}},
        )
        torch.onnx.export(
            DecoderStepGraph(model.decoder, dec_in[1:]).eval(), (torch.tensor([2, 5, 9]), *(example[n] for n in dec_in[1:])),
            str(dec_path), dynamo=False, opset_version=opset, input_names=list(dec_in), output_names=list(dec_out),
            dynamic_axes={n: dynamic(n) for n in dec_in + dec_out},
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
