"""Checkpoints: plain values and tensors only, so `torch.load(..., weights_only=True)` reads them."""
from __future__ import annotations

import os
import pickle
from dataclasses import fields
from pathlib import Path

import torch

from runtime.atomic import atomic_write
from runtime.pipeline import TextCodec
from runtime.prepare import TextConfig
from runtime.tokenizer import Tokenizer, SentencePieceTokenizer, from_state
from runtime.vocab import Vocab
from trainer.model import ModelConfig, Seq2Seq

CHECKPOINT_KIND = "seq2seq-edge-checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED = ("model_config", "model_state", "src_vocab", "tgt_vocab", "tokenizer")
SAMPLES = 16  # validation sentences a checkpoint keeps ("samples"), for the export's verification


class CheckpointError(Exception):
    """A file is not a checkpoint this version can read; the message is one line."""


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename: a crash at any moment
    leaves either the previous file or the new one, never half of one (normal permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Loads with weights_only=True (a pickle that carries code is refused, never run) and
    checks that it is one of our checkpoints of this format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # "Unsupported global" = the pickle names a class or function to call: refuse, never run it
        why = next((l.strip() for l in str(e).splitlines() if "unsupported global" in l.lower()), None)
        if why is None:
            raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt)") from None
        raise CheckpointError(f"{path}: refused to load: it holds more than tensors and plain values ({why[:100]})") from None
    except Exception as e:  # torch raises RuntimeError, EOFError, zipfile.BadZipFile, ... for a broken file
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path}: not a seq2seq-edge checkpoint (train one with `trainer fit`)")
    version = ckpt.get("format_version")
    if version != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}, this code reads version {CHECKPOINT_VERSION}; "
            "retrain with this version's `trainer fit` or use the version that wrote it"
        )
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    ckpt["path"] = str(path)  # for messages; not saved
    return ckpt


def new_checkpoint(**fields) -> dict:
    return {"kind": CHECKPOINT_KIND, "format_version": CHECKPOINT_VERSION, **fields}


def _vocab(ckpt: dict, key: str, where: str) -> Vocab:
    try:
        return Vocab(ckpt[key])
    except ValueError as e:
        raise CheckpointError(f"{where}: {key}: {e}") from None


def config_problem(cfg: ModelConfig) -> str | None:
    """What the runtime would refuse in a model config (its folder checks read the same values), or None."""
    from runtime.state import ATTENTIONS

    for name in ("src_vocab_size", "tgt_vocab_size"):
        if not _positive(getattr(cfg, name), low=5):
            return f"{name} {getattr(cfg, name)!r} is not an integer > 4"
    for name in ("emb_dim", "hidden_dim", "layers"):
        if not _positive(getattr(cfg, name)):
            return f"{name} {getattr(cfg, name)!r} is not a positive integer"
    if not _positive(cfg.max_source_len, low=3):
        return f"max_source_len {cfg.max_source_len!r} is not an integer >= 3"
    if not isinstance(cfg.reverse_source, bool):
        return f"reverse_source {cfg.reverse_source!r} is not true or false"
    if cfg.attention not in ATTENTIONS:
        return f"attention {cfg.attention!r} is not one of {', '.join(ATTENTIONS)}"
    if not (isinstance(cfg.dropout, (int, float)) and not isinstance(cfg.dropout, bool) and 0 <= cfg.dropout < 1):
        return f"dropout {cfg.dropout!r} is not a number from 0 to below 1"
    return None


def _positive(v, low: int = 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def shape_problem(cfg: ModelConfig, state) -> str | None:
    """The config's sizes against the saved tensors' shapes, without building the model."""
    if not isinstance(state, dict):
        return None  # named below, with the other state checks
    h = cfg.hidden_dim
    expected = {"encoder.embedding.weight": (cfg.src_vocab_size, cfg.emb_dim),
                "decoder.embedding.weight": (cfg.tgt_vocab_size, cfg.emb_dim),
                "encoder.lstm.weight_hh_l0": (4 * h, h), "decoder.out.weight": (cfg.tgt_vocab_size, h)}
    for key, shape in expected.items():
        tensor = state.get(key)
        if isinstance(tensor, torch.Tensor) and tuple(tensor.shape) != shape:
            return f"tensor {key!r} has shape {tuple(tensor.shape)}, the model config needs {shape}"
    layers = sum(1 for k in state if isinstance(k, str) and k.startswith("encoder.lstm.weight_hh_l"))
    if layers and cfg.layers != layers:
        return f"model_config says {cfg.layers} layers, model_state holds {layers}"
    return None


def model_from_checkpoint(ckpt: dict) -> tuple[Seq2Seq, Vocab, Vocab, Tokenizer | SentencePieceTokenizer]:
    """The model (eval mode), vocabularies and tokenizer of a loaded checkpoint. Every part is
    checked against the others: CheckpointError names what is missing, misshapen or inconsistent."""
    where = ckpt.get("path", "checkpoint")
    cfg = ckpt["model_config"]
    names = {f.name for f in fields(ModelConfig)}
    if not isinstance(cfg, dict) or set(cfg) - names:
        raise CheckpointError(f"{where}: model_config has unknown fields {sorted(set(cfg) - names) if isinstance(cfg, dict) else cfg!r}")
    try:
        model_cfg = ModelConfig.from_dict(cfg)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: model_config is invalid ({str(e).splitlines()[0][:160]})") from None
    problem = config_problem(model_cfg)
    if problem:
        raise CheckpointError(f"{where}: model_config is invalid ({problem})")
    problem = shape_problem(model_cfg, ckpt.get("model_state"))
    if problem:  # before the model is built: a config of a million layers must not allocate them
        raise CheckpointError(f"{where}: {problem}")
    model = Seq2Seq(model_cfg)
    src_vocab, tgt_vocab = _vocab(ckpt, "src_vocab", where), _vocab(ckpt, "tgt_vocab", where)
    for side, vocab, size in (("src_vocab", src_vocab, model_cfg.src_vocab_size), ("tgt_vocab", tgt_vocab, model_cfg.tgt_vocab_size)):
        if len(vocab) != size:
            raise CheckpointError(f"{where}: {side} has {len(vocab)} tokens but the model config says {size}")
    state = ckpt["model_state"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: model_state is not a state dict")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"{where}: model_state lacks tensor {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"{where}: model_state has unexpected tensor {extra[0]!r}")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or v.shape != expected[k].shape:
            got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise CheckpointError(f"{where}: tensor {k!r} has shape {got}, the model config needs {tuple(expected[k].shape)}")
    model.load_state_dict(state)
    model.eval()
    try:
        tokenizer = from_state(ckpt["tokenizer"])
    except ValueError as e:
        raise CheckpointError(f"{where}: tokenizer: {e}") from None
    if isinstance(tokenizer, SentencePieceTokenizer):
        for side, vocab in (("src", src_vocab), ("tgt", tgt_vocab)):
            if tokenizer.pieces(side) != vocab.itos:
                raise CheckpointError(f"{where}: {side}_vocab is not the list of pieces of its SentencePiece model")
    return model, src_vocab, tgt_vocab, tokenizer


def text_config(ckpt: dict) -> TextConfig:
    """How the checkpoint's model reads text; one saved before this setting existed read it as typed."""
    saved = ckpt.get("text") or {}
    names = set(TextConfig.__dataclass_fields__)
    if not isinstance(saved, dict) or set(saved) - names:
        raise CheckpointError(f"{ckpt.get('path', 'checkpoint')}: text settings are not {sorted(names)}")
    return TextConfig(**saved)


def codec_of(ckpt: dict, model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab, tokenizer) -> TextCodec:
    """The checkpoint's way between text and ids, as its model folder will have it."""
    return TextCodec(tokenizer, src_vocab, tgt_vocab, model.cfg.reverse_source, model.cfg.max_source_len, text_config(ckpt))
