"""Tokenizers shared by training and inference: words, or SentencePiece subwords (one model per side).

A tokenizer's settings (and, for SentencePiece, its models) travel with the model, in the
checkpoint and in the model folder, so the runtime splits text exactly as the trainer did. Both
kinds answer `tokenize(text, side)` -> tokens and `detokenize(tokens, side)` -> text, where side
is "src" or "tgt"; the tokens are the strings of that side's vocabulary. `encode(text, side, vocab)`
-> ids and `decode(ids, side, vocab)` -> text go between text and that vocabulary's ids directly
(decode: up to the first <eos>, specials dropped but <unk>, as Vocab.tokens).
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field

from runtime.vocab import EOS_ID, SPECIALS, UNK_ID

WORD, SENTENCEPIECE = "word", "sentencepiece"
SIDES = ("src", "tgt")

# french elisions ("l'aide" -> "l'" "aide", "qu'il" -> "qu'" "il") come first so they win over
# a whole-word match at the same position; other apostrophes stay inside the word ("don't",
# "aujourd'hui"); hyphenated words stay whole ("est-ce", "peut-être"); any other symbol is a token.
_TOKEN_RE = re.compile(
    r"\b(?:jusqu|lorsqu|puisqu|quoiqu|qu|[cdjlmnst])'(?=\w)"
    r"|\w+(?:[-']\w+)*"
    r"|[^\w\s]"
)
_NO_SPACE_BEFORE = set(".,!?;:)]}%»…")
_NO_SPACE_AFTER = set("([{«")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


@dataclass(frozen=True)
class Tokenizer:
    """Word-level: splits text into word and punctuation tokens; `detokenize` writes normal text back."""

    lowercase: bool = True  # both vocabularies shrink a lot; case comes back via `capitalize`
    capitalize: bool = True  # detokenize upper-cases the first letter when lowercase is on
    kind = WORD

    def tokenize(self, text: str, side: str = "src") -> list[str]:
        text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
        if self.lowercase:
            text = text.lower()
        return _TOKEN_RE.findall(text)

    def detokenize(self, tokens: list[str], side: str = "tgt") -> str:
        out: list[str] = []
        for tok in tokens:
            if out and not (
                tok[0] in _NO_SPACE_BEFORE or out[-1].endswith("'") or out[-1][-1] in _NO_SPACE_AFTER
            ):
                out.append(" ")
            out.append(tok)
        text = "".join(out)
        if self.lowercase and self.capitalize and text:
            text = text[0].upper() + text[1:]
        return text

    def encode(self, text: str, side: str, vocab) -> list[int]:
        return vocab.ids(self.tokenize(text, side))

    def decode(self, ids, side: str, vocab) -> str:
        return self.detokenize(vocab.tokens(ids), side)

    def to_dict(self) -> dict:
        """Settings as tokenizer.json and the checkpoint keep them (format 1 had no "type")."""
        return asdict(self)

    def state(self) -> dict:
        """Everything needed to rebuild it (to_dict; for SentencePiece also the models' bytes)."""
        return {"type": WORD, **asdict(self)}

    @classmethod
    def from_dict(cls, d) -> "Tokenizer":
        """Settings as saved by to_dict; ValueError names a wrong or unknown field."""
        if not isinstance(d, dict):
            raise ValueError("tokenizer settings must be a JSON object")
        d = {k: v for k, v in d.items() if not (k == "type" and v == WORD)}
        _check_settings(d, set(cls.__dataclass_fields__))
        return cls(**d)


@dataclass(frozen=True, eq=False)
class SentencePieceTokenizer:
    """Subwords from one SentencePiece model per side (serialized ModelProto bytes).

    The models are trained with our specials at ids 0..3 (<pad> <unk> <sos> <eos>), so a piece's
    SentencePiece id is its vocabulary id. Case and punctuation are kept (unless the models were
    trained case-folded, `lowercase`); a word never seen in training splits into smaller pieces,
    down to single characters. A character absent from the training text becomes <unk>.
    """

    source_model: bytes = field(repr=False)
    target_model: bytes = field(repr=False)
    lowercase: bool = False  # models trained with case folding (nmt_nfkc_cf)
    kind = SENTENCEPIECE

    def __post_init__(self):
        import sentencepiece as spm

        processors = {}
        for side, blob in zip(SIDES, (self.source_model, self.target_model)):
            if not isinstance(blob, bytes) or not blob:
                raise ValueError(f"the {side} SentencePiece model is missing")
            sp = spm.SentencePieceProcessor()
            try:
                sp.LoadFromSerializedProto(blob)
            except Exception:  # sentencepiece raises RuntimeError/OSError with a C++ log line
                raise ValueError(f"the {side} SentencePiece model is corrupt (not a serialized model)") from None
            if tuple(sp.id_to_piece(i) for i in range(min(len(SPECIALS), sp.get_piece_size()))) != SPECIALS:
                raise ValueError(f"the {side} SentencePiece model does not have {' '.join(SPECIALS)} at ids 0..3")
            processors[side] = sp
        object.__setattr__(self, "_sp", processors)

    def tokenize(self, text: str, side: str = "src") -> list[str]:
        return self._sp[side].encode(text, out_type=str)

    def detokenize(self, tokens: list[str], side: str = "tgt") -> str:
        return self._sp[side].decode_pieces(list(tokens))

    # A vocabulary of a SentencePiece tokenizer is its model's pieces in id order (the checkpoint
    # reader and the runtime both refuse any other), so ids pass to and from SentencePiece as they
    # are, without the pieces' strings: ~2 µs less a sentence each way, hot; several times that
    # once decoding has left the caches cold.
    def encode(self, text: str, side: str, vocab=None) -> list[int]:
        return self._sp[side].encode(text)

    def decode(self, ids, side: str, vocab=None) -> str:
        kept = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i >= len(SPECIALS) or i == UNK_ID:
                kept.append(i)
        return self._sp[side].decode(kept)

    def pieces(self, side: str) -> list[str]:
        """The side's vocabulary: its pieces in id order."""
        sp = self._sp[side]
        return sp.id_to_piece(list(range(sp.get_piece_size())))  # one call: ~3x faster than one per id

    def to_dict(self) -> dict:
        """Settings, naming the models by sha256 (cache keys; the folder names them by file)."""
        return {"type": SENTENCEPIECE, "lowercase": self.lowercase,
                "source_model_sha256": hashlib.sha256(self.source_model).hexdigest(),
                "target_model_sha256": hashlib.sha256(self.target_model).hexdigest()}

    def state(self) -> dict:
        return {"type": SENTENCEPIECE, "lowercase": self.lowercase, "source_model": self.source_model,
                "target_model": self.target_model}


TOKENIZER_FILE = "tokenizer.json"
SPM_FILES = {"src": "source_sentencepiece.model", "tgt": "target_sentencepiece.model"}  # format 2, SentencePiece only
SPM_FIELDS = {"src": "source_model", "tgt": "target_model"}
TYPES = f'"{WORD}" or "{SENTENCEPIECE}"'


class TokenizerFileError(ValueError):
    """A tokenizer.json or SentencePiece model of a model folder is wrong; `file` names which."""

    def __init__(self, file: str, message: str):
        super().__init__(message)
        self.file = file


def _check_settings(d: dict, allowed: set[str]) -> None:
    """The settings both kinds share: no unknown field, flags true or false."""
    unknown = set(d) - allowed
    if unknown:
        raise ValueError(f"unknown tokenizer field {sorted(unknown)[0]!r}")
    for name in ("lowercase", "capitalize"):
        if name in d and not isinstance(d[name], bool):
            raise ValueError(f"field {name!r} must be true or false, got {json.dumps(d[name])[:40]}")


def folder_files(tokenizer) -> dict[str, bytes]:
    """What a model folder holds of a tokenizer: tokenizer.json (its settings, naming its models),
    and a SentencePiece tokenizer's two models."""
    if tokenizer.kind == SENTENCEPIECE:
        settings = {"type": SENTENCEPIECE, "lowercase": tokenizer.lowercase,
                    **{SPM_FIELDS[side]: SPM_FILES[side] for side in SIDES}}
        files = {SPM_FILES["src"]: tokenizer.source_model, SPM_FILES["tgt"]: tokenizer.target_model}
    else:
        settings, files = {"type": WORD, **tokenizer.to_dict()}, {}
    return {TOKENIZER_FILE: (json.dumps(settings, indent=1) + "\n").encode(), **files}


def from_folder(settings, files: dict[str, bytes], typed: bool = True) -> "Tokenizer | SentencePieceTokenizer":
    """A tokenizer from a folder's tokenizer.json settings and its listed files' bytes (name -> bytes).
    typed: the settings name their "type" (format 2 on; format 1 was word settings only).
    TokenizerFileError names the file and what is wrong."""
    def wrong(message: str, file: str = TOKENIZER_FILE):
        return TokenizerFileError(file, message)

    if not isinstance(settings, dict):
        raise wrong("must be a JSON object")
    kind = settings.get("type", WORD if not typed else None)
    if kind not in (WORD, SENTENCEPIECE):
        raise wrong(f"field 'type' must be {TYPES}, got {json.dumps(settings.get('type'))[:40]}")
    d = {k: v for k, v in settings.items() if k != "type"}
    try:
        if kind == WORD:
            return Tokenizer.from_dict(d)
        _check_settings(d, {"lowercase", *SPM_FIELDS.values()})
    except ValueError as e:
        raise wrong(str(e)) from None
    models = {}
    for side in SIDES:
        field_name, name = SPM_FIELDS[side], SPM_FILES[side]
        if field_name not in d:
            raise wrong(f"field {field_name!r} is missing")
        if d[field_name] != name:
            raise wrong(f"field {field_name!r} must be {json.dumps(name)}, got {json.dumps(d[field_name])[:40]}")
        if name not in files:
            raise wrong("the SentencePiece model tokenizer.json names is not listed in config.json", name)
        models[side] = files[name]
    try:
        return SentencePieceTokenizer(models["src"], models["tgt"], d.get("lowercase", False))
    except ValueError as e:
        raise wrong(str(e), SPM_FILES["src"] if "the src" in str(e) else SPM_FILES["tgt"]) from None


def from_state(state) -> Tokenizer | SentencePieceTokenizer:
    """A tokenizer from `state()` (as checkpoints keep it; a dict without "type" is a word
    tokenizer's settings, as format 1 saved them). ValueError says what is wrong."""
    if isinstance(state, dict) and state.get("type") == SENTENCEPIECE:
        _check_settings({k: v for k, v in state.items() if k != "type"}, {"lowercase", *SPM_FIELDS.values()})
        return SentencePieceTokenizer(state.get("source_model"), state.get("target_model"), state.get("lowercase", False))
    if isinstance(state, dict) and state.get("type", WORD) != WORD:
        raise ValueError(f"unknown tokenizer type {state['type']!r} (known: {WORD}, {SENTENCEPIECE})")
    return Tokenizer.from_dict(state)
