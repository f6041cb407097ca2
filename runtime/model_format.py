"""The model folder's schema: the only interface between `export` (writer) and `runtime` (reader).

Documented in docs/model-format.md. Bump FORMAT_VERSION whenever a reader of the old version could
misread a new folder. What the files are (names, config.json's fields and their checks, the graphs'
signatures) lives here; how they are read in runtime/folder_io.py, the decoder state's tensor names
in runtime/state.py, the tokenizer's settings in runtime/tokenizer.py.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime.fields import BOOL, LANGUAGE, POSITIVE_INT, check_fields, is_int, is_number, require_fields
from runtime.folder_io import (MiB, REEXPORT_HINT, Folder, ModelFolderError, check_name, opened, parse_json,
                               sha256_files)
from runtime.prepare import TextConfig
from runtime.state import (ATTENTIONS, ENCODER_INPUTS, OUTPUT_LAYER_INPUTS, decoder_inputs, decoder_outputs,
                           STEP_IDS, encoder_outputs)
from runtime.tokenizer import SPM_FILES, TOKENIZER_FILE, TokenizerFileError, folder_files, from_folder
from runtime.vocab import SPECIAL_IDS

__all__ = ["ModelFolderError", "REEXPORT_HINT", "FolderConfig", "DecodingDefaults", "open_folder", "load_config",
           "load_tokenizer", "tokenizer_files", "graph_signatures", "parse_json"]

FORMAT_VERSION = 8
# version 1 folders (word vocabularies, decoder with `logits`), 2 (no "text": languages unknown,
# input read as typed), 3 (the decoder projects onto the whole vocabulary itself: no output layer
# graph, no shortlist), 4 (a shortlist folder's decoder.onnx takes the output layer's rows as
# inputs, and there is no other), 5 (each graph's weights inside its .onnx), 6 (a shortlist
# without per-source lists still gathers its rows per batch) and 7 (a fixed shortlist's decoder
# is one step) still load
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8)
CONFIG_FILE = "config.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
# optional, together: the target ids each source id may need (format 4), the graph that gathers
# those rows of the output projection (4), and (5) a second decoder that takes them as inputs; from
# format 5 decoder.onnx always holds the whole projection (prepacked: faster for large batches)
SHORTLIST_FILE = "shortlist.npz"
OUTPUT_LAYER_FILE = "output_layer.onnx"
DECODER_SHORTLIST_FILE = "decoder_shortlist.onnx"
SHORTLIST_DECODER_VERSION = 5  # the first format with decoder_shortlist.onnx
# from format 6 each graph's weights are in <graph>.safetensors beside it (runtime/weights.py)
WEIGHTS_FILE_VERSION = 6
# from format 7 a shortlist without per-source lists ({"per_source": 0}) is fixed: the same
# candidates for every batch, so decoder_shortlist.onnx holds their rows itself (prepacked, as
# decoder.onnx's whole projection) and maps its columns to target ids; no output_layer.onnx
FIXED_SHORTLIST_VERSION = 7
# from format 8 a fixed shortlist's decoder_shortlist.onnx is its step inside an ONNX Loop: one step
# unless fed max_steps (an initializer, so not among its inputs), and step_ids (n, B), the ids of the
# n steps it ran, up to the first <eos>: a batch of one decodes greedily in one run (export/step_graph.py multi_step_decoder)
LOOP_DECODER_VERSION = 8
# from format 8 also a fixed shortlist's candidates are read from decoder_shortlist.safetensors, this
# tensor (its decoder's own constant: the ids of its columns), not from shortlist.npz
FIXED_CANDIDATES = "shortlist.candidates"


def weights_file(graph: str) -> str:
    """decoder.onnx -> decoder.safetensors"""
    return graph.removesuffix(".onnx") + ".safetensors"


SOURCE_VOCAB_FILE = "source_vocabulary.json"
TARGET_VOCAB_FILE = "target_vocabulary.json"
SOURCE_SPM_FILE, TARGET_SPM_FILE = SPM_FILES["src"], SPM_FILES["tgt"]
REQUIRED_FILES = (ENCODER_FILE, DECODER_FILE, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, TOKENIZER_FILE)
GRAPH_FILES = (ENCODER_FILE, DECODER_FILE, OUTPUT_LAYER_FILE, DECODER_SHORTLIST_FILE)
# the most the runtime reads of each file; an .onnx can't exceed protobuf's 2 GB anyway
MAX_BYTES = {CONFIG_FILE: 1 * MiB, TOKENIZER_FILE: 1 * MiB, SOURCE_VOCAB_FILE: 64 * MiB, TARGET_VOCAB_FILE: 64 * MiB,
             SOURCE_SPM_FILE: 64 * MiB, TARGET_SPM_FILE: 64 * MiB, SHORTLIST_FILE: 256 * MiB,
             **{name: 2048 * MiB for graph in GRAPH_FILES for name in (graph, weights_file(graph))}}
MISSING_HINT = "create one with `python -m export onnx CHECKPOINT --out DIR`"


# beam search holds (batch x beam x target vocabulary) scores per step: a beam of 10^8 would ask for
# terabytes, and translation gains nothing past a few dozen
MAX_BEAM = 256


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
    max_source_len: int  # ids, <sos> and <eos> included; longer input is cut to fit
    opset: int
    quantization: str | None = None  # None (fp32) or "int8"
    attention: str = "none"  # format 2; "none" is the paper's decoder (the only one format 1 knew)
    special_ids: dict = field(default_factory=lambda: dict(SPECIAL_IDS))
    decoding: DecodingDefaults = field(default_factory=DecodingDefaults)
    text: TextConfig = field(default_factory=TextConfig)  # format 3; older folders: the defaults (as they were read)
    # format 4: {"frequent": N, "per_source": k} when the folder has a shortlist, else None
    shortlist: dict | None = None
    producer: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)  # file name -> sha256 of every other file
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def sha256_file(path: Path) -> str:
    return sha256_files([path])


def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """What the export writes for a tokenizer (runtime/tokenizer.py says what they hold)."""
    return folder_files(tokenizer)


def fixed_shortlist(cfg: FolderConfig) -> bool:
    """A shortlist whose candidates are the same for every batch (format 7, no per-source lists)."""
    return bool(cfg.shortlist) and cfg.shortlist["per_source"] == 0 and cfg.format_version >= FIXED_SHORTLIST_VERSION


def shortlist_files(cfg: FolderConfig) -> tuple[str, ...]:
    """The files a folder with a shortlist has on top of the others (none without one)."""
    if not cfg.shortlist:
        return ()
    if fixed_shortlist(cfg):
        return (SHORTLIST_FILE, DECODER_SHORTLIST_FILE)
    extra = (DECODER_SHORTLIST_FILE,) if cfg.format_version >= SHORTLIST_DECODER_VERSION else ()
    return (SHORTLIST_FILE, OUTPUT_LAYER_FILE) + extra


def graph_weights_files(cfg: FolderConfig) -> tuple[str, ...]:
    """The weights file of each graph the folder has (format 6; none before: weights inside the graphs)."""
    if cfg.format_version < WEIGHTS_FILE_VERSION:
        return ()
    graphs = (ENCODER_FILE, DECODER_FILE) + tuple(n for n in shortlist_files(cfg) if n.endswith(".onnx"))
    return tuple(weights_file(graph) for graph in graphs)


def rows_decoder_file(cfg: FolderConfig) -> str | None:
    """The decoder graph that takes the output layer's rows as inputs: decoder_shortlist.onnx
    (format 5), decoder.onnx (a format 4 shortlist folder: its only decoder), or None (no shortlist, or
    a fixed one: its decoder_shortlist.onnx holds its rows)."""
    if not cfg.shortlist or fixed_shortlist(cfg):
        return None
    return DECODER_SHORTLIST_FILE if cfg.format_version >= SHORTLIST_DECODER_VERSION else DECODER_FILE


def graph_signatures(cfg: FolderConfig) -> dict[str, tuple[dict, dict]]:
    """file -> (inputs, outputs), each name -> (onnxruntime type, shape); None is a dynamic dim.
    The names and their order come from runtime/state.py."""
    state = ("tensor(float)", [cfg.layers, None, cfg.hidden_dim])  # (L, B, H)
    ids = ("tensor(int64)", [None])  # (B,)
    shapes = {
        "src_ids": ("tensor(int64)", [None, None]), "src_lengths": ids, "prev_ids": ids, "next_ids": ids,
        "hidden": state, "cell": state,
        "memory": ("tensor(float)", [None, None, cfg.hidden_dim]), "input_feed": ("tensor(float)", [None, cfg.hidden_dim]),
        "keys": ("tensor(float)", [None, cfg.hidden_dim, None]), "score_bias": ("tensor(float)", [None, 1, None]),
        "candidates": ("tensor(int64)", [None]),
        # an int8 folder's rows stay as quantized (export/quantize.py int8_output_rows): from format 5
        # decoder.onnx's int8 projection itself, in format 4 the output layer's own uint8 quantization
        "out_weight": (("tensor(int8)" if cfg.format_version >= SHORTLIST_DECODER_VERSION else "tensor(uint8)")
                       if cfg.quantization == "int8" else "tensor(float)", [cfg.hidden_dim, None]),
        "out_bias": ("tensor(float)", [None]),
        STEP_IDS: ("tensor(int64)", [None, None]),
    }

    def decoder(rows: bool, fixed: bool = False) -> tuple[dict, dict]:
        # (B, K): K candidates (fixed: as many as shortlist.npz gives, which the first run checks) or V
        scores = ("tensor(float)", [None, None if rows or fixed else cfg.tgt_vocab_size])
        shape = lambda name: scores if name in ("log_probs", "logits") else shapes[name.removeprefix("new_")]
        outputs = (("logits",) if cfg.format_version == 1 else ()) + decoder_outputs(cfg.attention)
        if fixed and cfg.format_version >= LOOP_DECODER_VERSION:  # log_probs: (n, B, K), each step's
            outputs += (STEP_IDS,)
            scores = ("tensor(float)", [None, None, None])
        return ({n: shape(n) for n in decoder_inputs(cfg.attention, cfg.format_version, rows)},
                {n: shape(n) for n in outputs})

    shape = lambda name: shapes[name]
    rows_decoder = rows_decoder_file(cfg)
    graphs = {
        ENCODER_FILE: ({n: shape(n) for n in ENCODER_INPUTS},
                       {n: shape(n) for n in encoder_outputs(cfg.attention, cfg.format_version)}),
        DECODER_FILE: decoder(rows=rows_decoder == DECODER_FILE),
    }
    if rows_decoder:
        graphs[OUTPUT_LAYER_FILE] = ({n: shape(n) for n in OUTPUT_LAYER_INPUTS}, {n: shape(n) for n in ("out_weight", "out_bias")})
        graphs[rows_decoder] = decoder(rows=True)
    if fixed_shortlist(cfg):
        graphs[DECODER_SHORTLIST_FILE] = decoder(rows=False, fixed=True)
    return graphs


# ---- config.json's fields ------------------------------------------------------------------------

_CONFIG_FIELDS = {
    "src_vocab_size": (lambda v: is_int(v) and v > 4, "an integer > 4"),
    "tgt_vocab_size": (lambda v: is_int(v) and v > 4, "an integer > 4"),
    "emb_dim": POSITIVE_INT, "hidden_dim": POSITIVE_INT, "layers": POSITIVE_INT,
    "reverse_source": BOOL,
    "max_source_len": (lambda v: is_int(v) and v >= 3, "an integer >= 3"),
    "opset": POSITIVE_INT,
    "quantization": (lambda v: v in (None, "int8"), 'null or "int8"'),
    "attention": (lambda v: isinstance(v, str), "a string"),
    "special_ids": (lambda v: v == SPECIAL_IDS, json.dumps(SPECIAL_IDS)),
    "decoding": (lambda v: isinstance(v, dict), "an object"),
    "text": (lambda v: isinstance(v, dict), "an object"),
    "producer": (lambda v: isinstance(v, dict), "an object"),
    "shortlist": (lambda v: v is None or (isinstance(v, dict) and set(v) == {"frequent", "per_source"}
                                          and all(is_int(x) and x >= 0 for x in v.values())),
                  'null or {"frequent": N, "per_source": k}'),
    "files": (lambda v: isinstance(v, dict) and all(isinstance(d, str) and len(d) == 64 and
                                                    all(c in "0123456789abcdef" for c in d) for d in v.values()),
              "an object of file name -> sha256 hex digest"),
    "format_version": (is_int, "an integer"),
}
_REQUIRED_FIELDS = ("src_vocab_size", "tgt_vocab_size", "emb_dim", "hidden_dim", "layers", "reverse_source",
                    "max_source_len", "opset", "files")
_NEWER_FIELDS = {"attention": 2, "text": 3, "shortlist": 4}  # fields a folder of each version has on top of version 1's
_DECODING_FIELDS = {
    "max_len_a": (lambda v: is_number(v) and v >= 0, "a finite number >= 0"),
    "max_len_b": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "max_len": POSITIVE_INT, "beam_size": (lambda v: is_int(v) and 1 <= v <= MAX_BEAM, f"an integer from 1 to {MAX_BEAM}"),
    "length_penalty": (lambda v: is_number(v) and v >= 0, "a finite number >= 0"),
}
_TEXT_FIELDS = {"source_language": LANGUAGE, "target_language": LANGUAGE, "restore_case": BOOL}


def _read_config(folder: Folder) -> FolderConfig:
    """config.json of an opened folder: its version one this runtime reads, every field checked."""
    raw = parse_json(folder.path, CONFIG_FILE, folder.read(CONFIG_FILE, MAX_BYTES[CONFIG_FILE]))
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        newer = is_int(version) and version > FORMAT_VERSION
        fix = "upgrade the runtime" if newer else REEXPORT_HINT
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        raise ModelFolderError(f"{folder.path}: model format version {version!r}, this runtime reads versions {readable}; {fix}")
    where = str(folder.path / CONFIG_FILE)
    check_fields(where, raw, {k: v for k, v in _CONFIG_FIELDS.items() if _NEWER_FIELDS.get(k, 1) <= version})
    if raw.get("attention", "none") not in ATTENTIONS:
        raise ModelFolderError(f"{where}: attention {raw['attention']!r} is not one this runtime runs "
                               f"({', '.join(ATTENTIONS)}); upgrade the runtime")
    require_fields(where, raw, _REQUIRED_FIELDS + (("text",) if version >= 3 else ()))
    check_fields(where, raw.get("decoding", {}), _DECODING_FIELDS, prefix="decoding.")
    check_fields(where, raw.get("text", {}), _TEXT_FIELDS, prefix="text.")
    config = FolderConfig(**{**raw, "decoding": DecodingDefaults(**raw.get("decoding", {})),
                             "text": TextConfig(**raw.get("text", {}))})
    for name in config.files:
        check_name(folder.path, name)
    for name in REQUIRED_FILES + shortlist_files(config) + graph_weights_files(config):
        if name not in config.files:
            raise ModelFolderError(f"{folder.path}: {CONFIG_FILE} lists no checksum for {name}; {REEXPORT_HINT}")
    return config


def open_folder(model_dir: str | os.PathLike, keep=None, shortlist: bool | None = None) -> tuple[FolderConfig, dict[str, bytes]]:
    """-> (config, {name: bytes} for the files in `keep`, default all). The folder is opened once
    and every listed file read once from it, bounded, and its sha256 checked; the caller loads those
    very bytes (nothing is read twice, so nothing can change in between). A folder that `export
    --force` exchanged (and removed) while it was being read is read again, whole, as it is now.
    shortlist: True / False reads only the files a Translator with its shortlist on / off uses
    (unused_files: the others are neither read nor hashed); None every file."""
    for attempt in range(3):
        with opened(Path(model_dir), MISSING_HINT) as folder:
            try:
                return _read_files(folder, keep, shortlist)
            except ModelFolderError:
                if attempt == 2 or not folder.replaced():
                    raise


def unused_files(cfg: FolderConfig, shortlist: bool) -> set[str]:
    """The files a Translator with its shortlist on (True) or off does not read: with a fixed shortlist
    on, decoder.onnx (--no-shortlist's; 22 MB of an fp32 folder to hash at every start) and, from format
    8, shortlist.npz (the candidates are the fixed decoder's own FIXED_CANDIDATES); off, a format
    5+ folder's shortlist files (decoder.onnx then scores the whole vocabulary; a format 4 folder's
    decoder.onnx takes the output layer's rows, so it reads them all). Their weights files with them."""
    if not cfg.shortlist:
        return set()
    if shortlist:
        graphs = {DECODER_FILE} if fixed_shortlist(cfg) else set()
        if fixed_shortlist(cfg) and cfg.format_version >= LOOP_DECODER_VERSION:  # its candidates: FIXED_CANDIDATES
            graphs.add(SHORTLIST_FILE)
    else:
        graphs = set(shortlist_files(cfg)) if cfg.format_version >= SHORTLIST_DECODER_VERSION else set()
    weights = {weights_file(g) for g in graphs if g.endswith(".onnx")} if cfg.format_version >= WEIGHTS_FILE_VERSION else set()
    return graphs | weights


def _read_files(folder: Folder, keep, shortlist: bool | None) -> tuple[FolderConfig, dict[str, bytes]]:
    config = _read_config(folder)
    unused = unused_files(config, shortlist) if shortlist is not None else set()
    kept = {}
    for name, digest in config.files.items():
        if name in unused:
            continue
        data = folder.read(name, MAX_BYTES.get(name, 64 * MiB))
        if hashlib.sha256(data).hexdigest() != digest:
            raise ModelFolderError(f"{folder.path / name}: sha256 does not match {CONFIG_FILE} (file changed or "
                                   f"corrupt); {REEXPORT_HINT}")
        if keep is None or name in keep:
            kept[name] = data
    return config, kept


def load_config(model_dir: str | os.PathLike) -> FolderConfig:
    """Reads config.json, refuses another format version, and checks every file's sha256."""
    return open_folder(model_dir, keep=())[0]


def load_tokenizer(model_dir: Path, config: FolderConfig, data: dict[str, bytes]):
    """The folder's tokenizer from tokenizer.json (and the SentencePiece models it names), built
    from the verified bytes."""
    settings = parse_json(model_dir, TOKENIZER_FILE, data[TOKENIZER_FILE])
    if isinstance(settings, dict) and settings.get("type") == "sentencepiece" \
            and importlib.util.find_spec("sentencepiece") is None:
        raise ModelFolderError(f"{model_dir}: this model uses SentencePiece subwords and the sentencepiece package is "
                               "not installed; pip install sentencepiece")
    try:
        return from_folder(settings, data, typed=config.format_version >= 2)
    except TokenizerFileError as e:
        raise ModelFolderError(f"{Path(model_dir) / e.file}: {e}; {REEXPORT_HINT}") from None
