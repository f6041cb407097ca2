"""Checkpoints: plain values and tensors only, so `torch.load(..., weights_only=True)` reads them."""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

CHECKPOINT_KIND = "seq2seq-edge-checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED = ("model_config", "model_state", "src_vocab", "tgt_vocab", "tokenizer")


class CheckpointError(Exception):
    """A file is not a checkpoint this version can read; the message is one line."""


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename: a crash at any moment
    leaves either the previous file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Loads with weights_only=True (a pickle that carries code is refused, never run) and
    checks that it is one of our checkpoints of this format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # "Unsupported global" = the pickle names a class or function to call: refuse, never run it
        why = next((l.strip() for l in str(e).splitlines() if "unsupported global" in l.lower()), None)
        if why is None:
            raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt)") from None
        raise CheckpointError(f"{path}: refused to load: it holds more than tensors and plain values ({why[:100]})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {str(e).splitlines()[0][:160]})") from None
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
    return ckpt


def new_checkpoint(**fields) -> dict:
    return {"kind": CHECKPOINT_KIND, "format_version": CHECKPOINT_VERSION, **fields}
