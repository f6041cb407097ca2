"""The model folder: the only interface between `export` (writer) and `runtime` (reader).

Documented in docs/model-format.md. Bump FORMAT_VERSION whenever a reader of the old version
could misread a new folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
SOURCE_VOCAB_FILE = "source_vocabulary.json"
TARGET_VOCAB_FILE = "target_vocabulary.json"
TOKENIZER_FILE = "tokenizer.json"

# graph tensor names (the export writes them, the runtime binds them)
ENCODER_INPUTS = ("src_ids", "src_lengths")
ENCODER_OUTPUTS = ("hidden", "cell")
DECODER_INPUTS = ("prev_ids", "hidden", "cell")
DECODER_OUTPUTS = ("logits", "log_probs", "new_hidden", "new_cell", "next_ids")

REEXPORT_HINT = "re-export it with `python -m export onnx CHECKPOINT --out DIR --force`"


class ModelFolderError(Exception):
    """A model folder is missing, incomplete, tampered with or of another format version."""


@dataclass
class DecodingDefaults:
    max_len_a: float = 2.0  # a sentence gets at most a * source_ids + b target tokens ...
    max_len_b: int = 10
    max_len: int = 256  # ... and never more than this
    beam_size: int = 1
    length_penalty: float = 0.0


@dataclass
class FolderConfig:
    """config.json. Sizes let a reader check the graphs and vocabularies before running them."""

    src_vocab_size: int
    tgt_vocab_size: int
    emb_dim: int
    hidden_dim: int
    layers: int
    reverse_source: bool
    max_source_len: int  # ids, <sos> and <eos> included; longer input is truncated
    opset: int
    quantization: str | None = None  # None (fp32) or "int8"
    special_ids: dict = field(default_factory=lambda: {"pad": 0, "unk": 1, "sos": 2, "eos": 3})
    decoding: DecodingDefaults = field(default_factory=DecodingDefaults)
    producer: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # file name -> sha256 of every other file
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "FolderConfig":
        d = dict(d)
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        d["decoding"] = DecodingDefaults(**d.get("decoding", {}))
        return cls(**d)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"{path}: {what} is missing; {REEXPORT_HINT}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFolderError(f"{path}: {what} is unreadable ({e}); {REEXPORT_HINT}") from None


def load_config(model_dir: str | os.PathLike, verify_files: bool = True) -> FolderConfig:
    """Reads config.json, refuses another format version, and checks every file's sha256."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelFolderError(
            f"{model_dir}: no model folder there; create one with `python -m export onnx CHECKPOINT --out {model_dir}`"
        )
    raw = read_json(model_dir / CONFIG_FILE, CONFIG_FILE)
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        fix = "upgrade the runtime" if newer else REEXPORT_HINT
        raise ModelFolderError(
            f"{model_dir}: model format version {version!r}, this runtime reads version {FORMAT_VERSION}; {fix}"
        )
    try:
        config = FolderConfig.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise ModelFolderError(f"{model_dir / CONFIG_FILE}: invalid config ({e}); {REEXPORT_HINT}") from None
    if verify_files:
        for name in (ENCODER_FILE, DECODER_FILE, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, TOKENIZER_FILE):
            if name not in config.files:
                raise ModelFolderError(f"{model_dir}: {CONFIG_FILE} lists no checksum for {name}; {REEXPORT_HINT}")
        for name, digest in config.files.items():
            path = model_dir / name
            if not path.is_file():
                raise ModelFolderError(f"{path}: file is missing; {REEXPORT_HINT}")
            if sha256_file(path) != digest:
                raise ModelFolderError(f"{path}: sha256 does not match {CONFIG_FILE} (file changed or corrupt); {REEXPORT_HINT}")
    return config


def write_folder_atomically(out_dir: Path, build, force: bool) -> None:
    """Calls build(tmp_dir) to fill a fresh folder beside out_dir, then swaps it into place.

    A failed or interrupted build leaves out_dir as it was; with force an existing out_dir is
    replaced only after the new one is complete.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise FileExistsError(f"{out_dir} exists; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        build(tmp)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
