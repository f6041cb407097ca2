"""`export onnx`: checkpoint -> verified model folder (see docs/model-format.md)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from runtime.atomic import atomic_write, clean_leftovers, write_folder
from runtime.model_format import (
    CONFIG_FILE, FORMAT_VERSION, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, DecodingDefaults, FolderConfig, sha256_file,
    tokenizer_files,
)
from export.graphs import DEFAULT_OPSET, export_graphs
from export.verify import Report


class ExportError(Exception):
    """Export failed; the message is one line for the user."""


def _write_json(path: Path, obj) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps(obj, ensure_ascii=False, indent=1) + "\n")


def export_onnx(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, opset: int = DEFAULT_OPSET,
                force: bool = False, quantize: str | None = None, verify: bool = True, log=lambda m: None) -> Report:
    """Writes the model folder atomically; raises ExportError (folder untouched) if verification fails."""
    import onnx
    import onnxruntime
    import torch

    from export.quantize import float_weight_ops, quantize_int8, quantized_op_counts, wide_int8_weights
    from export.verify import VerificationError, assert_parity, check_graphs, compare, greedy_ids, sample_sentences
    from trainer.checkpoint import load_checkpoint, model_from_checkpoint, text_config

    out_dir = Path(out_dir)
    if not Path(checkpoint).is_file():  # the user's input first, then where the output goes
        raise ExportError(f"{checkpoint}: no such checkpoint file")
    clean_leftovers(out_dir)  # a killed export's temporary folders; a folder it had put aside goes back
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out {out_dir}: is a file, not a folder")
    if out_dir.exists() and not force:
        raise ExportError(f"{out_dir} exists; pass --force to replace it")
    ckpt = load_checkpoint(checkpoint)
    model, src_vocab, tgt_vocab, tokenizer = model_from_checkpoint(ckpt)
    text = text_config(ckpt)
    cfg = model.cfg
    report = Report()

    def build(tmp: Path) -> None:
        enc, dec = export_graphs(model, tmp, opset)
        texts = sample_sentences(ckpt, tokenizer, src_vocab, cfg.max_source_len)
        if verify:
            check_graphs(enc, dec)
            report.__dict__.update(compare(model, enc, dec, texts, tokenizer, src_vocab).__dict__)
            assert_parity(report)
        if quantize == "int8":
            fp32_ids = greedy_ids(enc, dec, texts, tokenizer, src_vocab, cfg)
            report.size_fp32 = enc.stat().st_size + dec.stat().st_size
            for path in (enc, dec):
                q = path.with_suffix(".int8.onnx")
                quantize_int8(path, q)
                os.replace(q, path)
            left = float_weight_ops(enc) + float_weight_ops(dec)
            if left:
                raise ExportError(f"int8 quantization left fp32 weights in {left} ops")
            wide = wide_int8_weights(enc) + wide_int8_weights(dec)
            if wide:
                raise ExportError(f"int8 weights {wide[:3]} exceed 7 bits: they could saturate on CPUs without VNNI")
            if verify:
                check_graphs(enc, dec)
                int8_ids = greedy_ids(enc, dec, texts, tokenizer, src_vocab, cfg)
                report.int8_agreement = sum(a == b for a, b in zip(fp32_ids, int8_ids)) / len(texts)
            report.size_int8 = enc.stat().st_size + dec.stat().st_size
            log(f"quantized ops: encoder {quantized_op_counts(enc)}, decoder {quantized_op_counts(dec)}")
        _write_json(tmp / SOURCE_VOCAB_FILE, src_vocab.itos)
        _write_json(tmp / TARGET_VOCAB_FILE, tgt_vocab.itos)
        for name, data in tokenizer_files(tokenizer).items():
            with atomic_write(tmp / name, "wb") as f:
                f.write(data)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        config = FolderConfig(
            src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), emb_dim=cfg.emb_dim,
            hidden_dim=cfg.hidden_dim, layers=cfg.layers, reverse_source=cfg.reverse_source,
            max_source_len=cfg.max_source_len, opset=opset, quantization=quantize, attention=cfg.attention,
            decoding=DecodingDefaults(), text=text,
            producer={"name": "seq2seq-edge export", "torch": torch.__version__, "onnx": onnx.__version__,
                      "onnxruntime": onnxruntime.__version__, "checkpoint": Path(checkpoint).name,
                      "checkpoint_metrics": dict(ckpt.get("metrics", {}))},
            files=files, format_version=FORMAT_VERSION,
        )
        with atomic_write(tmp / CONFIG_FILE) as f:
            f.write(config.to_json())

    try:
        write_folder(out_dir, build, force)
    except VerificationError as e:
        raise ExportError(f"verification failed, nothing written: {e}") from None
    except FileExistsError as e:
        raise ExportError(str(e)) from None
    return report
