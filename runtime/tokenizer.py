"""Word-level tokeniser shared by training and inference.

Its settings travel with the model (checkpoint and model folder), so the runtime splits text
exactly as the trainer did.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

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
    """Splits text into word and punctuation tokens; `detokenize` writes normal text back."""

    lowercase: bool = True  # both vocabularies shrink a lot; case comes back via `capitalize`
    capitalize: bool = True  # detokenize upper-cases the first letter when lowercase is on

    def tokenize(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
        if self.lowercase:
            text = text.lower()
        return _TOKEN_RE.findall(text)

    def detokenize(self, tokens: list[str]) -> str:
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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> "Tokenizer":
        """Settings as saved by to_dict; ValueError names a wrong or unknown field."""
        if not isinstance(d, dict):
            raise ValueError("tokenizer settings must be a JSON object")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown tokenizer field {sorted(unknown)[0]!r}")
        for name, value in d.items():
            if not isinstance(value, bool):
                raise ValueError(f"field {name!r} must be true or false, got {value!r}")
        return cls(**d)
