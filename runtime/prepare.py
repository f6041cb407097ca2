"""Input as people type it -> the text the model reads, and the model's output back in the writer's
casing. The trainer prepares every training pair with these same functions, so the model only ever
sees prepared text.

ALL CAPS and Title Case text are translated as sentence case ("WHERE IS THE STATION?" is read as
"Where is the station?") and the translation is given the writer's casing back ("OÙ EST LA GARE ?").
A model trained on ordinary text, with lower-cased sentences among its augmented sources, handles
sentence case far better than pieces of capitals it rarely saw (measured: docs/benchmarks.md).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

AS_WRITTEN, UPPER, TITLE = "as_written", "upper", "title"
# languages whose nouns are capitalised: a line of capitalised words is ordinary text there
NO_TITLE_CASE = {"de", "lb"}
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w[\w'’-]*")


@dataclass(frozen=True)
class TextConfig:
    """How a model's text is prepared (config.json "text"; the checkpoint's "text")."""

    source_language: str | None = None  # ISO 639-1 code, e.g. "en" (folders before format 3: unknown)
    target_language: str | None = None
    restore_case: bool = False  # ALL CAPS / Title Case read as sentence case, output re-cased (format 3 default)

    def to_dict(self) -> dict:
        return asdict(self)


def casing(text: str, language: str | None = None) -> str:
    """UPPER: at least two capitals and no lower case letter (nor a title case one, such as the
    digraph "ǅ": str.isupper). TITLE: at least three words, each one's first letter a capital (and
    not all capitals; never for languages that capitalise nouns). Else AS_WRITTEN.

    Python's str methods, not a test of each character in Python: that took ~14 µs a sentence, 1%
    of decoding one at a time. An ordinary sentence is decided at its first word in lower case.
    """
    if text.isupper() and sum(map(str.isupper, text)) >= 2:  # isupper: no lower (or title) case letter
        return UPPER
    if language in NO_TITLE_CASE:
        return AS_WRITTEN
    words = 0
    for word in _WORD.finditer(text):
        initial = next((c for c in word.group() if c.isalpha()), None)
        if initial is None:  # digits only
            continue
        if not initial.isupper():
            return AS_WRITTEN
        words += 1
    return TITLE if words >= 3 else AS_WRITTEN


def with_first_letter(text: str, change) -> str:
    """text with change (str.upper, str.lower) applied to its first letter."""
    for i, c in enumerate(text):
        if c.isalpha():
            return text[:i] + change(c) + text[i + 1:]
    return text


def sentence_case(text: str) -> str:
    """Lower case but for the first letter."""
    return with_first_letter(text.lower(), str.upper)


def normalize(text: str) -> str:
    """NFC, every run of whitespace one space, no space at either end."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def prepare_source(text: str, cfg: TextConfig) -> tuple[str, str]:
    """Text as typed -> (the text to tokenize, its casing for restore_casing)."""
    text = normalize(text)
    kind = casing(text, cfg.source_language) if cfg.restore_case else AS_WRITTEN
    return (sentence_case(text) if kind != AS_WRITTEN else text), kind


def prepare_target(text: str, cfg: TextConfig) -> str:
    """A training target as the model should write it: an ALL CAPS or Title Case target (from the
    corpus, or augmentation) is written in sentence case, which restore_casing turns back."""
    text = normalize(text)
    if cfg.restore_case and casing(text, cfg.target_language) != AS_WRITTEN:
        return sentence_case(text)
    return text


def restore_casing(text: str, kind: str) -> str:
    """The translation of a source of casing `kind`, in that casing."""
    if kind == UPPER:
        return text.upper()
    if kind == TITLE:
        return _WORD.sub(lambda m: m.group()[:1].upper() + m.group()[1:], text)
    return text
