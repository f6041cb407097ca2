"""The model's graphs, each built node by node from the weights: the encoder
(export/encoder_graph.py), the one-step decoder and, with a shortlist, the output layer and the
decoder that takes its rows (export/step_graph.py)."""
from __future__ import annotations

from pathlib import Path

from runtime.model_format import FORMAT_VERSION

DEFAULT_OPSET = 17


def export_graphs(model, out_dir: Path, opset: int = DEFAULT_OPSET, shortlist: bool = False) -> tuple[Path, ...]:
    """Writes encoder.onnx and decoder.onnx (dynamic batch and source length), fp32; with a
    shortlist also output_layer.onnx, which gathers the output layer's rows, and
    decoder_shortlist.onnx, which takes them as inputs. -> the paths: encoder, decoder (, output
    layer, shortlist decoder)."""
    import onnx

    from export.encoder_graph import encoder_graph
    from export.step_graph import decoder_step_graph, output_layer_graph
    from runtime.model_format import DECODER_FILE, DECODER_SHORTLIST_FILE, ENCODER_FILE, OUTPUT_LAYER_FILE

    cfg = model.cfg
    arrays = lambda module: {k: v.detach().float().cpu().numpy() for k, v in module.state_dict().items()}
    encoder, weights = arrays(model.encoder), arrays(model.decoder)
    if "attention.linear_in.weight" in weights:  # W_a: applied to the memory once, in the encoder
        encoder["attention.linear_in.weight"] = weights["attention.linear_in.weight"]
    enc_path, dec_path, out_path = out_dir / ENCODER_FILE, out_dir / DECODER_FILE, out_dir / OUTPUT_LAYER_FILE
    onnx.save(encoder_graph(encoder, cfg, opset), str(enc_path))
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


def set_metadata(path: Path, props: dict[str, str]) -> None:
    import onnx

    m = onnx.load(str(path))
    existing = {p.key: p for p in m.metadata_props}
    for key, value in props.items():
        entry = existing.get(key) or m.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(m, str(path))  # small models: weights stay inside the file, no external data
