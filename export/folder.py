"""`export onnx`: checkpoint -> verified model folder (see docs/model-format.md).

The steps, each a function: the graphs, their verification against PyTorch, int8 quantization,
each graph's weights moved into a file beside it (export/weights.py), the vocabulary and tokenizer
files, config.json with every file's sha256, and last the runtime's own checks of the folder (the
same code that loads it) -- all in a temporary folder, put in place only when every step passed.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from export.graphs import DEFAULT_OPSET, export_graphs
from export.verify import Report
from export.weights import folder_bytes, move_weights
from runtime.atomic import atomic_write, check_target, write_folder
from runtime.lock import exclusive, lock_path
from runtime.vocab import SPECIAL_IDS
from runtime.model_format import (
    CONFIG_FILE, FORMAT_VERSION, SHORTLIST_FILE, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, DecodingDefaults, FolderConfig,
    sha256_file, tokenizer_files,
)


class ExportError(Exception):
    """Export failed; the message is one line for the user."""


@dataclass
class Exported:
    """What the export writes: a checkpoint's model, vocabularies, tokenizer and settings."""

    checkpoint: Path
    ckpt: dict
    model: object  # trainer.model.Seq2Seq
    src_vocab: object
    tgt_vocab: object
    tokenizer: object
    text: object  # runtime.prepare.TextConfig


def export_onnx(checkpoint: str | os.PathLike, out_dir: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                force: bool = False, quantize: str | None = None, verify: bool = True, shortlist: bool | None = False,
                log=lambda m: None) -> Report:
    """Writes the model folder atomically and returns the verification report; raises ExportError
    (folder untouched) if a step fails, Busy if another export is writing the same folder.
    shortlist: add the checkpoint's lexical shortlist (runtime/shortlist.py), which the runtime
    then uses unless told not to; None: add it when it is the default kind (default_shortlist)."""
    from trainer.checkpoint import load_checkpoint, model_from_checkpoint, text_config

    out_dir = Path(out_dir)
    if not Path(checkpoint).is_file():  # the user's input first, then where the output goes
        raise ExportError(f"{checkpoint}: no such checkpoint file")
    with exclusive(lock_path(out_dir, inside=False), f"--out {out_dir}"):  # one export at a time into it
        try:
            check_target(out_dir, force)
        except FileExistsError as e:
            raise ExportError(str(e)) from None
        ckpt = load_checkpoint(checkpoint)
        if shortlist is None:
            shortlist = default_shortlist(ckpt)
        if shortlist and not isinstance(ckpt.get("shortlist"), dict):
            raise ExportError(f"{checkpoint}: the checkpoint has no shortlist (trained before they existed); add one "
                              f"with `trainer shortlist {checkpoint}`, or export without --shortlist")
        source = Exported(Path(checkpoint), ckpt, *model_from_checkpoint(ckpt), text_config(ckpt))
        return write_folder(out_dir, lambda tmp: _build(source, tmp, opset, quantize, verify, shortlist, log), force)


def _build(source: Exported, tmp: Path, opset: int, quantize: str | None, verify: bool, shortlist: bool,
           log) -> Report:
    from export.verify import sample_sentences

    fixed = fixed_candidates(source) if shortlist else None
    paths = export_graphs(source.model, tmp, opset, shortlist and fixed is None)
    texts = sample_sentences(source.ckpt, source.tokenizer, source.src_vocab, source.model.cfg.max_source_len)
    report = verify_graphs(source, paths, texts) if verify else Report()
    if quantize == "int8":
        quantize_graphs(source, paths, texts, report, verify, log, opset)
    if fixed is not None:  # cut from the final decoder.onnx (int8 as quantized), then checked against it
        paths += (write_fixed_shortlist_decoder(source, paths, fixed, texts, verify),)
    for path in paths:  # verified and quantized as self-contained graphs; the folder keeps weights apart
        move_weights(path)
    write_files(source, tmp, shortlist)
    write_config(source, tmp, opset, quantize, shortlist)
    check_with_runtime(tmp)
    return report


def default_shortlist(ckpt: dict) -> bool:
    """Whether a checkpoint's shortlist goes into the folder unasked: the kind `trainer fit` builds
    (fixed, counted over the model's own output: it passes the bar of docs/benchmarks.md), when it
    leaves out part of the vocabulary. Any other (an older checkpoint's per-source lists) only asked."""
    state = ckpt.get("shortlist")
    if not isinstance(state, dict):
        return False
    sizes = state.get("sizes", {})
    fixed = int(sizes.get("per_source", -1)) == 0 and bool(sizes.get("from_model"))
    return fixed and len(set(state["frequent"].tolist()) | set(SPECIAL_IDS.values())) < len(ckpt["tgt_vocab"])


def fixed_candidates(source: Exported):
    """The target ids of a fixed shortlist (no per-source lists: the same for every batch), sorted,
    as the runtime derives them from shortlist.npz; None for a shortlist with per-source lists."""
    from runtime.shortlist import Shortlist

    state = source.ckpt["shortlist"]
    if int(state["sizes"]["per_source"]) != 0:
        return None
    return Shortlist(state["frequent"].numpy(), state["by_source"].numpy(), len(source.tgt_vocab)).always_ids()


def write_fixed_shortlist_decoder(source: Exported, paths, candidates, texts: list[str], verify: bool) -> Path:
    """decoder_shortlist.onnx of a fixed shortlist (export/step_graph.py fixed_shortlist_decoder),
    verified against decoder.onnx -> its path."""
    import onnx

    from export.step_graph import fixed_shortlist_decoder, multi_step_decoder
    from export.verify import VerificationError, check_fixed_shortlist
    from runtime.vocab import EOS_ID
    from runtime.model_format import DECODER_SHORTLIST_FILE

    path = paths[1].with_name(DECODER_SHORTLIST_FILE)
    step = fixed_shortlist_decoder(onnx.load(str(paths[1])), candidates)
    onnx.save(multi_step_decoder(step, EOS_ID), str(path))
    if verify:
        try:
            check_fixed_shortlist(paths, path, candidates, texts, source.tokenizer, source.src_vocab, source.model.cfg)
        except VerificationError as e:
            raise ExportError(f"verification failed, nothing written: {e}") from None
    return path


def verify_graphs(source: Exported, paths, texts: list[str]) -> Report:
    """onnx.checker, then onnxruntime against PyTorch (both decoders of a shortlist folder, the
    shortlist's one with every row); ExportError if they disagree."""
    from export.verify import VerificationError, assert_parity, check_graphs, compare, worst

    try:
        check_graphs(paths)
        report = compare(source.model, paths, texts, source.tokenizer, source.src_vocab)
        if len(paths) == 4:
            report = worst(report, compare(source.model, paths, texts, source.tokenizer, source.src_vocab, rows=True))
        assert_parity(report)
    except VerificationError as e:
        raise ExportError(f"verification failed, nothing written: {e}") from None
    return report


def quantize_graphs(source: Exported, paths, texts: list[str], report: Report, verify: bool, log,
                    opset: int = DEFAULT_OPSET) -> None:
    """The graphs to int8 in place; the report gains the sizes and (verified) the greedy agreement."""
    from export.quantize import (float_weight_ops, int8_embedding, int8_output_rows, quantize_int8,
                                 quantized_op_counts, wide_int8_weights)
    from export.verify import VerificationError, check_graphs, greedy_ids

    args = (texts, source.tokenizer, source.src_vocab, source.model.cfg)
    fp32_ids = greedy_ids(paths, *args) if verify else None
    report.size_fp32 = folder_bytes(paths)
    for path in paths[:2] + paths[3:]:  # a shortlist's output layer: from the quantized decoder.onnx, below
        quantized = path.with_suffix(".int8.onnx")
        quantize_int8(path, quantized)
        int8_embedding(quantized)
        os.replace(quantized, path)
    if len(paths) == 4:  # a shortlist: encoder, decoder, output layer, shortlist decoder
        int8_output_rows(paths[1], paths[2], paths[3], opset)
    left = [op for p in paths for op in float_weight_ops(p)]
    if left:
        raise ExportError(f"int8 quantization left fp32 weights in {left} ops")
    wide = [name for p in paths for name in wide_int8_weights(p)]
    if wide:
        raise ExportError(f"int8 weights {wide[:3]} exceed 7 bits: they could saturate on CPUs without VNNI")
    if verify:
        try:
            check_graphs(paths)
        except VerificationError as e:
            raise ExportError(f"verification failed, nothing written: {e}") from None
        int8_ids = greedy_ids(paths, *args)
        report.int8_agreement = sum(a == b for a, b in zip(fp32_ids, int8_ids)) / len(texts)
    report.size_int8 = folder_bytes(paths)
    log("quantized ops: " + ", ".join(f"{p.stem} {quantized_op_counts(p)}" for p in paths))


def write_files(source: Exported, tmp: Path, shortlist: bool = False) -> None:
    """The vocabularies and the tokenizer (tokenizer.json, and a SentencePiece tokenizer's models);
    the shortlist when asked."""
    from runtime.shortlist import to_bytes

    if shortlist:
        with atomic_write(tmp / SHORTLIST_FILE, "wb") as f:
            f.write(to_bytes(source.ckpt["shortlist"]["frequent"].numpy(), source.ckpt["shortlist"]["by_source"].numpy()))
    for name, vocab in ((SOURCE_VOCAB_FILE, source.src_vocab), (TARGET_VOCAB_FILE, source.tgt_vocab)):
        with atomic_write(tmp / name) as f:
            f.write(json.dumps(vocab.itos, ensure_ascii=False, indent=1) + "\n")
    for name, data in tokenizer_files(source.tokenizer).items():
        with atomic_write(tmp / name, "wb") as f:
            f.write(data)


def write_config(source: Exported, tmp: Path, opset: int, quantize: str | None, shortlist: bool = False) -> None:
    """config.json: the sizes, settings, producer and the sha256 of every other file."""
    import onnx
    import onnxruntime
    import torch

    cfg = source.model.cfg
    config = FolderConfig(
        src_vocab_size=len(source.src_vocab), tgt_vocab_size=len(source.tgt_vocab), emb_dim=cfg.emb_dim,
        hidden_dim=cfg.hidden_dim, layers=cfg.layers, reverse_source=cfg.reverse_source,
        max_source_len=cfg.max_source_len, opset=opset, quantization=quantize, attention=cfg.attention,
        decoding=DecodingDefaults(), text=source.text,
        shortlist={k: int(source.ckpt["shortlist"]["sizes"][k]) for k in ("frequent", "per_source")} if shortlist else None,
        producer={"name": "seq2seq-edge export", "torch": torch.__version__, "onnx": onnx.__version__,
                  "onnxruntime": onnxruntime.__version__, "checkpoint": source.checkpoint.name,
                  "checkpoint_metrics": dict(source.ckpt.get("metrics", {}))},
        files={p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}, format_version=FORMAT_VERSION,
    )
    with atomic_write(tmp / CONFIG_FILE) as f:
        f.write(config.to_json())


def check_with_runtime(tmp: Path) -> None:
    """The folder must load in the runtime: its own checks (fields, files, graphs, one run of each),
    not a copy of them, so export never writes a folder the runtime would refuse."""
    from runtime.model_format import REEXPORT_HINT, ModelFolderError
    from runtime.translator import Translator

    try:
        Translator(tmp, device="cpu", threads=1)
    except (ModelFolderError, ValueError) as e:
        why = str(e).replace(f"; {REEXPORT_HINT}", "").replace(f"{tmp}/", "")
        raise ExportError(f"the runtime would refuse this folder, nothing written: {why}") from None
