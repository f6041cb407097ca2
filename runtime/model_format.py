"""The model folder: the only interface between `export` (writer) and `runtime` (reader).

Documented in docs/model-format.md. Bump FORMAT_VERSION whenever a reader of the old version
could misread a new folder.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime.prepare import TextConfig

FORMAT_VERSION = 3
# version 1 folders (word vocabularies, decoder with `logits`) and 2 (no "text": languages unknown,
# input read as typed) still load
READABLE_VERSIONS = (1, 2, 3)
CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
SOURCE_VOCAB_FILE = "source_vocabulary.json"
TARGET_VOCAB_FILE = "target_vocabulary.json"
TOKENIZER_FILE = "tokenizer.json"
SOURCE_SPM_FILE = "source_sentencepiece.model"  # format 2, SentencePiece tokenizers only
TARGET_SPM_FILE = "target_sentencepiece.model"
ATTENTION_NONE, ATTENTION_LUONG = "none", "luong"
ATTENTIONS = (ATTENTION_NONE, ATTENTION_LUONG)  # decoders this runtime runs (config.json "attention", format 2)

# graph tensor names (the export writes them, the runtime binds them). The decoder's state is a
# dict named after the one-step decoder's inputs; the encoder produces it (input_feed, zeros at
# the start, comes from the runtime) and each step returns its new_* parts.
ENCODER_INPUTS = ("src_ids", "src_lengths")
ENCODER_OUTPUTS = ("hidden", "cell")
DECODER_INPUTS = ("prev_ids", "hidden", "cell")
DECODER_OUTPUTS = ("log_probs", "new_hidden", "new_cell", "next_ids")
V1_DECODER_OUTPUTS = ("logits",) + DECODER_OUTPUTS  # format 1 also returned the raw logits, never read
# attention: the encoder also returns the memory (the top layer's outputs); the decoder also
# takes the memory, the source lengths (to mask padding) and the input feed, and returns the next feed
ATTENTION_ENCODER_OUTPUTS = ENCODER_OUTPUTS + ("memory",)
ATTENTION_DECODER_INPUTS = DECODER_INPUTS + ("input_feed", "memory", "src_lengths")
ATTENTION_DECODER_OUTPUTS = DECODER_OUTPUTS + ("new_input_feed",)
SOURCE_STATE = ("memory", "src_lengths")  # per source sentence; the same for all its beams
STATE_AXIS = {"hidden": 1, "cell": 1}  # (L, B, H); every other part has the batch first


def encoder_outputs(attention: str) -> tuple[str, ...]:
    return ATTENTION_ENCODER_OUTPUTS if attention == ATTENTION_LUONG else ENCODER_OUTPUTS


def decoder_inputs(attention: str) -> tuple[str, ...]:
    return ATTENTION_DECODER_INPUTS if attention == ATTENTION_LUONG else DECODER_INPUTS


def decoder_outputs(attention: str) -> tuple[str, ...]:
    return ATTENTION_DECODER_OUTPUTS if attention == ATTENTION_LUONG else DECODER_OUTPUTS


def select_rows(state: dict, rows, same_sources: bool, take) -> dict:
    """The state's batch rows `rows`, gathered by take(tensor, axis, rows) (numpy, torch, ...).

    same_sources: every new row continues a row of the same source sentence (beam search after
    its first expansion), so the per-sentence parts (memory, lengths) stay as they are.
    """
    return {name: x if same_sources and name in SOURCE_STATE else take(x, STATE_AXIS.get(name, 0), rows)
            for name, x in state.items()}


REEXPORT_HINT = "re-export it with `python -m export onnx CHECKPOINT --out DIR --force`"


def graph_signatures(cfg: "FolderConfig") -> dict[str, tuple[dict, dict]]:
    """file -> (inputs, outputs), each name -> (onnxruntime type, shape); None is a dynamic dim."""
    state = ("tensor(float)", [cfg.layers, None, cfg.hidden_dim])  # (L, B, H)
    ids = ("tensor(int64)", [None])  # (B,)
    scores = ("tensor(float)", [None, cfg.tgt_vocab_size])  # (B, V)
    encoder_outputs = {"hidden": state, "cell": state}
    decoder_inputs = {"prev_ids": ids, "hidden": state, "cell": state}
    decoder_outputs = {"log_probs": scores, "new_hidden": state, "new_cell": state, "next_ids": ids}
    if cfg.format_version == 1:
        decoder_outputs["logits"] = scores
    if cfg.attention == ATTENTION_LUONG:
        memory, feed = ("tensor(float)", [None, None, cfg.hidden_dim]), ("tensor(float)", [None, cfg.hidden_dim])
        encoder_outputs["memory"] = memory
        decoder_inputs.update(input_feed=feed, memory=memory, src_lengths=ids)
        decoder_outputs["new_input_feed"] = feed
    return {
        ENCODER_FILE: ({"src_ids": ("tensor(int64)", [None, None]), "src_lengths": ids}, encoder_outputs),
        DECODER_FILE: (decoder_inputs, decoder_outputs),
    }


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
    attention: str = "none"  # format 2; "none" is the paper's decoder (the only one format 1 knew)
    special_ids: dict = field(default_factory=lambda: {"pad": 0, "unk": 1, "sos": 2, "eos": 3})
    decoding: DecodingDefaults = field(default_factory=DecodingDefaults)
    text: TextConfig = field(default_factory=TextConfig)  # format 3; older folders: the defaults (as they were read)
    producer: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # file name -> sha256 of every other file
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- reading: every file is a plain name inside the folder, size-bounded, and hashed --------

MiB = 1 << 20
# the most the runtime reads of each file; an .onnx can't exceed protobuf's 2 GB anyway
MAX_BYTES = {CONFIG_FILE: 1 * MiB, TOKENIZER_FILE: 1 * MiB, SOURCE_VOCAB_FILE: 64 * MiB, TARGET_VOCAB_FILE: 64 * MiB,
             SOURCE_SPM_FILE: 64 * MiB, TARGET_SPM_FILE: 64 * MiB, ENCODER_FILE: 2048 * MiB, DECODER_FILE: 2048 * MiB}
REQUIRED_FILES = (ENCODER_FILE, DECODER_FILE, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, TOKENIZER_FILE)


def _check_name(model_dir: Path, name) -> None:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or "\0" in name or os.path.isabs(name):
        raise ModelFolderError(f"{model_dir / CONFIG_FILE}: files: {name!r} is not a plain file name inside the "
                               f"folder; {REEXPORT_HINT}")


def read_file(model_dir: Path, name: str, limit: int | None = None) -> bytes:
    """The bytes of model_dir/name: a regular file inside the folder (a symlink may point only
    within it), at most `limit` bytes (MAX_BYTES for the known files), read through one open
    file so what is checked is what is read."""
    _check_name(model_dir, name)
    limit = limit or MAX_BYTES.get(name, 64 * MiB)
    path = model_dir / name
    if path.is_symlink():
        real, root = os.path.realpath(path), os.path.realpath(model_dir)
        if os.path.commonpath([real, root]) != root:
            raise ModelFolderError(f"{path}: a link to {real}, outside the model folder; {REEXPORT_HINT}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except FileNotFoundError:
        raise ModelFolderError(f"{path}: file is missing; {REEXPORT_HINT}") from None
    except OSError as e:
        raise ModelFolderError(f"{path}: unreadable ({e.strerror}); {REEXPORT_HINT}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ModelFolderError(f"{path}: not a regular file; {REEXPORT_HINT}")
        if st.st_size > limit:
            raise ModelFolderError(f"{path}: {st.st_size:,} bytes, more than the {limit:,} allowed; {REEXPORT_HINT}")
        data = f.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise ModelFolderError(f"{path}: more than the {limit:,} bytes allowed; {REEXPORT_HINT}")
    return data


def parse_json(model_dir: Path, name: str, data: bytes):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelFolderError(f"{model_dir / name}: unreadable JSON ({str(e)[:120]}); {REEXPORT_HINT}") from None


# ---- type checks, field by field ------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _field_error(where: str, field_name: str, want: str, value) -> ModelFolderError:
    shown = json.dumps(value)[:40] if not isinstance(value, float) else repr(value)
    return ModelFolderError(f"{where}: field {field_name!r} must be {want}, got {shown}; {REEXPORT_HINT}")


# field -> (check, description); a positive int is >= 1
_POS_INT = (lambda v: _is_int(v) and v >= 1, "a positive integer")
_CONFIG_FIELDS = {
    "src_vocab_size": (lambda v: _is_int(v) and v > 4, "an integer > 4"),
    "tgt_vocab_size": (lambda v: _is_int(v) and v > 4, "an integer > 4"),
    "emb_dim": _POS_INT, "hidden_dim": _POS_INT, "layers": _POS_INT,
    "reverse_source": (lambda v: isinstance(v, bool), "true or false"),
    "max_source_len": (lambda v: _is_int(v) and v >= 3, "an integer >= 3"),
    "opset": _POS_INT,
    "quantization": (lambda v: v in (None, "int8"), 'null or "int8"'),
    "attention": (lambda v: isinstance(v, str), "a string"),
    "special_ids": (lambda v: v == {"pad": 0, "unk": 1, "sos": 2, "eos": 3},
                    '{"pad": 0, "unk": 1, "sos": 2, "eos": 3}'),
    "decoding": (lambda v: isinstance(v, dict), "an object"),
    "text": (lambda v: isinstance(v, dict), "an object"),
    "producer": (lambda v: isinstance(v, dict), "an object"),
    "files": (lambda v: isinstance(v, dict) and all(isinstance(d, str) and len(d) == 64 and
                                                    all(c in "0123456789abcdef" for c in d) for d in v.values()),
              "an object of file name -> sha256 hex digest"),
    "format_version": (_is_int, "an integer"),
}
_DECODING_FIELDS = {
    "max_len_a": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "max_len_b": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "max_len": _POS_INT, "beam_size": _POS_INT,
    "length_penalty": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
}


_LANGUAGE = (lambda v: v is None or (isinstance(v, str) and 2 <= len(v) <= 8 and v.replace("-", "").isalnum()),
             'null or a language code such as "en"')
_TEXT_FIELDS = {"source_language": _LANGUAGE, "target_language": _LANGUAGE,
                "restore_case": (lambda v: isinstance(v, bool), "true or false")}
# fields a folder of each version has on top of version 1's
_NEWER_FIELDS = {"attention": 2, "text": 3}


def check_fields(where: str, d, spec: dict, prefix: str = "") -> None:
    """Unknown keys and wrongly typed values are errors naming the file and the field."""
    if not isinstance(d, dict):
        raise ModelFolderError(f"{where}: must be a JSON object{f' at {prefix!r}' if prefix else ''}; {REEXPORT_HINT}")
    unknown = sorted(set(d) - set(spec))
    if unknown:  # a folder from a newer writer is not half-read
        raise ModelFolderError(f"{where}: unknown field {prefix + unknown[0]!r}; {REEXPORT_HINT}")
    for name, value in d.items():
        ok, want = spec[name]
        if not ok(value):
            raise _field_error(where, prefix + name, want, value)


def load_config(model_dir: str | os.PathLike, verify_files: bool = True) -> FolderConfig:
    """Reads config.json, refuses another format version, and checks every file's sha256."""
    return open_folder(model_dir, keep=())[0] if verify_files else _read_config(Path(model_dir))


def _read_config(model_dir: Path) -> FolderConfig:
    if not model_dir.is_dir():
        raise ModelFolderError(
            f"{model_dir}: no model folder there; create one with `python -m export onnx CHECKPOINT --out {model_dir}`"
        )
    raw = parse_json(model_dir, CONFIG_FILE, read_file(model_dir, CONFIG_FILE))
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        newer = _is_int(version) and version > FORMAT_VERSION
        fix = "upgrade the runtime" if newer else REEXPORT_HINT
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise ModelFolderError(
            f"{model_dir}: model format version {version!r}, this runtime reads versions {readable}; {fix}"
        )
    where = str(model_dir / CONFIG_FILE)
    fields_of_version = {k: v for k, v in _CONFIG_FIELDS.items() if _NEWER_FIELDS.get(k, 1) <= version}
    check_fields(where, raw, fields_of_version)
    if raw.get("attention", "none") not in ATTENTIONS:
        raise ModelFolderError(f"{where}: attention {raw['attention']!r} is not one this runtime runs "
                               f"({', '.join(ATTENTIONS)}); upgrade the runtime")
    missing = [f for f in ("src_vocab_size", "tgt_vocab_size", "emb_dim", "hidden_dim", "layers", "reverse_source",
                           "max_source_len", "opset", "files") + (("text",) if version >= 3 else ()) if f not in raw]
    if missing:
        raise ModelFolderError(f"{where}: field {missing[0]!r} is missing; {REEXPORT_HINT}")
    check_fields(where, raw.get("decoding", {}), _DECODING_FIELDS, prefix="decoding.")
    check_fields(where, raw.get("text", {}), _TEXT_FIELDS, prefix="text.")
    d = dict(raw)
    d["decoding"] = DecodingDefaults(**d.get("decoding", {}))
    d["text"] = TextConfig(**d.get("text", {}))
    config = FolderConfig(**d)
    for name in config.files:
        _check_name(model_dir, name)
    for name in REQUIRED_FILES:
        if name not in config.files:
            raise ModelFolderError(f"{model_dir}: {CONFIG_FILE} lists no checksum for {name}; {REEXPORT_HINT}")
    return config


def open_folder(model_dir: str | os.PathLike, keep=None) -> tuple[FolderConfig, dict[str, bytes]]:
    """-> (config, {name: bytes} for the files in `keep`, default all). Every listed file is read once, bounded,
    and its sha256 checked; the caller loads those very bytes (nothing is read twice, so nothing
    can change in between)."""
    model_dir = Path(model_dir)
    config = _read_config(model_dir)
    kept = {}
    for name, digest in config.files.items():
        data = read_file(model_dir, name)
        if hashlib.sha256(data).hexdigest() != digest:
            raise ModelFolderError(f"{model_dir / name}: sha256 does not match {CONFIG_FILE} (file changed or corrupt); "
                                   f"{REEXPORT_HINT}")
        if keep is None or name in keep:
            kept[name] = data
    return config, kept


# ---- tokenizer.json ------------------------------------------------------------------------------

_BOOL = (lambda v: isinstance(v, bool), "true or false")
_TOKENIZER_FIELDS = {
    "word": {"type": (lambda v: v == "word", '"word"'), "lowercase": _BOOL, "capitalize": _BOOL},
    "sentencepiece": {"type": (lambda v: v == "sentencepiece", '"sentencepiece"'), "lowercase": _BOOL,
                      "source_model": (lambda v: v == SOURCE_SPM_FILE, json.dumps(SOURCE_SPM_FILE)),
                      "target_model": (lambda v: v == TARGET_SPM_FILE, json.dumps(TARGET_SPM_FILE))},
}


def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """What the export writes for a tokenizer: tokenizer.json (format 2), plus a SentencePiece
    tokenizer's two models."""
    from runtime.tokenizer import SENTENCEPIECE

    if tokenizer.kind == SENTENCEPIECE:
        settings = {"type": SENTENCEPIECE, "lowercase": tokenizer.lowercase, "source_model": SOURCE_SPM_FILE,
                    "target_model": TARGET_SPM_FILE}
        files = {SOURCE_SPM_FILE: tokenizer.source_model, TARGET_SPM_FILE: tokenizer.target_model}
    else:
        settings, files = {"type": "word", **tokenizer.to_dict()}, {}
    return {TOKENIZER_FILE: (json.dumps(settings, indent=1) + "\n").encode(), **files}


def load_tokenizer(model_dir: Path, config: FolderConfig, data: dict[str, bytes]):
    """The folder's tokenizer from tokenizer.json (and the SentencePiece models it names), built
    from the verified bytes. A format 1 tokenizer.json has no "type": word settings."""
    from runtime.tokenizer import SentencePieceTokenizer, Tokenizer

    where = str(model_dir / TOKENIZER_FILE)
    d = parse_json(model_dir, TOKENIZER_FILE, data[TOKENIZER_FILE])
    if not isinstance(d, dict):
        raise ModelFolderError(f"{where}: must be a JSON object; {REEXPORT_HINT}")
    kind = d.get("type", "word" if config.format_version == 1 else None)
    if kind not in _TOKENIZER_FIELDS:
        raise ModelFolderError(f"{where}: field 'type' must be \"word\" or \"sentencepiece\", got "
                               f"{json.dumps(d.get('type'))[:40]}; {REEXPORT_HINT}")
    spec = _TOKENIZER_FIELDS[kind]
    check_fields(where, d, spec if config.format_version >= 2 else {k: v for k, v in spec.items() if k != "type"})
    if kind == "word":
        return Tokenizer(**{k: v for k, v in d.items() if k != "type"})
    missing = [f for f in spec if f not in d]
    if missing:
        raise ModelFolderError(f"{where}: field {missing[0]!r} is missing; {REEXPORT_HINT}")
    for name in (SOURCE_SPM_FILE, TARGET_SPM_FILE):
        if name not in data:
            raise ModelFolderError(f"{model_dir / name}: the SentencePiece model tokenizer.json names is not listed in "
                                   f"{CONFIG_FILE}; {REEXPORT_HINT}")
    import importlib.util

    if importlib.util.find_spec("sentencepiece") is None:
        raise ModelFolderError(f"{model_dir}: this model uses SentencePiece subwords and the sentencepiece package is "
                               "not installed; pip install sentencepiece")
    try:
        return SentencePieceTokenizer(data[SOURCE_SPM_FILE], data[TARGET_SPM_FILE], d["lowercase"])
    except ValueError as e:
        name = SOURCE_SPM_FILE if "src" in str(e) else TARGET_SPM_FILE
        raise ModelFolderError(f"{model_dir / name}: {e}; {REEXPORT_HINT}") from None
