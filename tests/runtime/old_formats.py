"""Model folders as earlier exporters wrote them, for the tests that older folders keep working."""
from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path


def write_format_5(folder: Path, out: Path) -> Path:
    """The folder the format 5 exporter wrote: as today's, but each graph holds its weights (no
    <graph>.safetensors beside it). `folder`: today's folder."""
    shutil.copytree(folder, out)
    return _relabel(out, 5)


def write_format_6(folder: Path, out: Path, version: int = 6) -> Path:
    """The folder the format 6 exporter wrote: today's, but for a fixed shortlist (format 7), which it
    did not write (its shortlists all had output_layer.onnx). `folder`: today's folder, not a fixed one.
    (version: the label only, for write_format_7.)"""
    import onnx

    shutil.copytree(folder, out)
    for graph in out.glob("*.onnx"):  # the metadata only: the weights stay in the file beside
        model = onnx.load(str(graph), load_external_data=False)
        next(p for p in model.metadata_props if p.key == "format_version").value = str(version)
        onnx.save(model, str(graph))
    config = json.loads((out / "config.json").read_text())
    config["format_version"] = version
    config["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())
                       if p.name != "config.json"}
    (out / "config.json").write_text(json.dumps(config))
    return out


def write_format_7(folder: Path, out: Path) -> Path:
    """The folder the format 7 exporter wrote: today's, but a fixed shortlist's decoder_shortlist.onnx
    is the one step (export/step_graph.py step_of: the step inside today's Loop), not the step in a Loop."""
    import onnx

    from export.step_graph import step_of
    from export.weights import move_weights

    shutil.copytree(folder, out)
    step = step_of(onnx.load(str(out / "decoder_shortlist.onnx")))  # its weights read from the folder
    (out / "decoder_shortlist.onnx").unlink()
    onnx.save(step, str(out / "decoder_shortlist.onnx"))
    move_weights(out / "decoder_shortlist.onnx")
    return write_format_6(out, out.with_name(out.name + "-7"), version=7)


def _relabel(out: Path, version: int) -> Path:
    """Every graph of the folder with its weights inside (onnx.load reads the external data in;
    saved, it is inside) and its metadata at `version`; config.json at `version`, its sha256 list anew."""
    from export.graphs import set_metadata

    for graph in out.glob("*.onnx"):
        set_metadata(graph, {"format_version": str(version), "producer": "seq2seq-edge"})
    for weights in out.glob("*.safetensors"):
        weights.unlink()
    config = json.loads((out / "config.json").read_text())
    config["format_version"] = version
    config["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())
                       if p.name != "config.json"}
    (out / "config.json").write_text(json.dumps(config))
    return out


def write_format_3(checkpoint: Path, folder: Path, out: Path) -> Path:
    """The folder the format 3 exporter wrote for this checkpoint: both graphs traced from PyTorch;
    the encoder returns hidden, cell (and memory); the attention decoder takes the source lengths,
    applies W_a to its query at every step and projects onto the whole vocabulary; no shortlist.
    `folder`: this checkpoint's folder of today, for the vocabularies and tokenizer."""
    import torch

    from export.graphs import set_metadata
    from runtime.state import (ATTENTION_DECODER_OUTPUTS, DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_OUTPUTS,
                               V3_ATTENTION_DECODER_INPUTS, V3_ATTENTION_ENCODER_OUTPUTS)
    from trainer.checkpoint import load_checkpoint, model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(checkpoint))[0].eval()
    attention = model.cfg.attention == "luong"
    enc_out = V3_ATTENTION_ENCODER_OUTPUTS if attention else ENCODER_OUTPUTS
    dec_in = V3_ATTENTION_DECODER_INPUTS if attention else DECODER_INPUTS
    dec_out = ATTENTION_DECODER_OUTPUTS if attention else DECODER_OUTPUTS

    class Wrapper(torch.nn.Module):  # the model as a submodule: its weights are parameters, not constants
        def __init__(self):
            super().__init__()
            self.model = model

    class Encoder(Wrapper):
        def forward(self, src_ids):
            memory, (hidden, cell) = self.model.encoder.lstm(self.model.encoder.embedding(src_ids))
            return (hidden, cell, memory) if attention else (hidden, cell)

    class Step(Wrapper):
        def forward(self, prev_ids, *state):
            logits, new = self.model.decoder.step(prev_ids, dict(zip(dec_in[1:], state)))  # keys made in the step
            extra = (new["input_feed"],) if attention else ()
            return (torch.log_softmax(logits, dim=-1), new["hidden"], new["cell"], logits.argmax(-1)) + extra

    write_format_5(folder, out)
    for name in ("output_layer.onnx", "shortlist.npz"):
        (out / name).unlink(missing_ok=True)
    src, lengths = torch.randint(4, model.cfg.src_vocab_size, (3, 7)), torch.tensor([7, 5, 2])
    with torch.no_grad():
        example = model.encoder(src, lengths)
    axes = lambda n: {0: "batch", 1: "src_len"} if n == "memory" else {1 if n.removeprefix("new_") in ("hidden", "cell") else 0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder().eval(), (src,), str(out / "encoder.onnx"), dynamo=False, opset_version=17,
                          input_names=["src_ids"], output_names=list(enc_out),
                          dynamic_axes={"src_ids": {0: "batch", 1: "src_len"}, **{n: axes(n) for n in enc_out}})
        torch.onnx.export(Step().eval(), (torch.tensor([2, 5, 9]), *(example[n] for n in dec_in[1:])),
                          str(out / "decoder.onnx"), dynamo=False, opset_version=17, input_names=list(dec_in),
                          output_names=list(dec_out), dynamic_axes={n: axes(n) for n in dec_in + dec_out})
    wire_sequence_lens(out / "encoder.onnx")
    for graph in ("encoder.onnx", "decoder.onnx"):
        set_metadata(out / graph, {"format_version": "3", "producer": "seq2seq-edge"})
    config = json.loads((out / "config.json").read_text())
    del config["shortlist"]
    config["format_version"] = 3
    config["files"] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())
                       if p.name != "config.json"}
    (out / "config.json").write_text(json.dumps(config))
    return out


def write_format_4(folder: Path, out: Path) -> Path:
    """The folder the format 4 exporter wrote: as today's, but a shortlist folder's only decoder,
    decoder.onnx, is the one that takes the output layer's rows as inputs (today's
    decoder_shortlist.onnx). `folder`: today's folder, with or without a shortlist."""
    write_format_5(folder, out)
    rows = out / "decoder_shortlist.onnx"
    if rows.exists():
        rows.replace(out / "decoder.onnx")
    return _relabel(out, 4)


def wire_sequence_lens(path: Path) -> None:
    """What the exporters of formats 1-5 did to the traced encoder: adds the src_lengths input (B,)
    int64 and feeds it, as int32, to every LSTM node's sequence_lens."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(path))
    if "src_lengths" not in {i.name for i in m.graph.input}:
        m.graph.input.append(helper.make_tensor_value_info("src_lengths", TensorProto.INT64, ["batch"]))
    m.graph.node.insert(0, helper.make_node("Cast", ["src_lengths"], ["src_lengths_i32"], to=TensorProto.INT32))
    for node in (n for n in m.graph.node if n.op_type == "LSTM"):
        while len(node.input) < 5:
            node.input.append("")
        node.input[4] = "src_lengths_i32"  # inputs: X, W, R, B, sequence_lens, initial_h, initial_c
    onnx.save(m, str(path))
