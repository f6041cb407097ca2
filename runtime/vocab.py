"""Vocabulary (index = token id) and the source/target id layout shared by trainer and runtime."""
from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import Iterable, Sequence

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIALS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_IDS = {"pad": PAD_ID, "unk": UNK_ID, "sos": SOS_ID, "eos": EOS_ID}  # as config.json states them


class Vocab:
    """Token <-> id mapping; ids 0..3 are the specials <pad> <unk> <sos> <eos>."""

    def __init__(self, itos: Sequence[str]):
        """ValueError names what is wrong: not a list, a non-string token, the specials, duplicates."""
        if not isinstance(itos, (list, tuple)):
            raise ValueError(f"a vocabulary must be a JSON list of token strings, not {type(itos).__name__}")
        bad = next((i for i, t in enumerate(itos) if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueError(f"token {bad} is {type(itos[bad]).__name__}, not a string")
        if tuple(itos[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {list(SPECIALS)}, got {list(itos[:4])}")
        self.itos = list(itos)
        if len(self.stoi) != len(self.itos):
            raise ValueError("a vocabulary has duplicate tokens")

    @classmethod
    def of_pieces(cls, pieces: list[str]) -> "Vocab":
        """A SentencePiece model's pieces in id order: unique strings, the specials first (loading the
        model checked them), so not checked again, and the token -> id map only built if used (a
        runtime with SentencePiece never does: ids come from the model itself; ~1.3 ms of a cold start)."""
        vocab = cls.__new__(cls)
        vocab.itos = pieces
        return vocab

    @cached_property
    def stoi(self) -> dict[str, int]:
        return {tok: i for i, tok in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences: Iterable[list[str]], min_freq: int = 1, max_size: int | None = None) -> "Vocab":
        return cls.from_counts(Counter(tok for sent in sentences for tok in sent), min_freq, max_size)

    @classmethod
    def from_counts(cls, counts: dict[str, int], min_freq: int = 1, max_size: int | None = None) -> "Vocab":
        """Most frequent first (ties alphabetical, so the result is deterministic)."""
        words = sorted((w for w, n in counts.items() if n >= min_freq and w not in SPECIALS),
                       key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls(list(SPECIALS) + words)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, UNK_ID) for t in tokens]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Ids up to the first <eos>, specials dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
            elif i == UNK_ID:
                out.append(UNK)
        return out


def source_ids(tokens: list[str], vocab: Vocab, reverse: bool, max_source_len: int) -> list[int]:
    """<sos> + (reversed) words + <eos>, at most max_source_len ids in all (words beyond are dropped).

    Sutskever et al. reverse the source so the first source words sit next to the first target
    words, which shortens the dependencies the LSTM must carry.
    """
    return framed(vocab.ids(tokens[: max(0, max_source_len - 2)]), reverse, max_source_len)


def framed(ids, reverse: bool, max_source_len: int) -> list[int]:
    """A source's token ids -> <sos> + (reversed) ids + <eos>, at most max_source_len ids in all."""
    words = list(ids[: max(0, max_source_len - 2)])
    if reverse:
        words.reverse()
    return [SOS_ID] + words + [EOS_ID]


def encode_text(text: str, tokenizer, vocab: Vocab, reverse: bool, max_source_len: int,
                ids=None) -> tuple[list[int] | None, bool]:
    """Source text -> (source_ids, whether it was truncated); None for text without a token
    (blank, or only control characters), which translates to "". One path for the runtime, the
    trainer's evaluation and the export's verification. ids: the text's token ids, if encoded already."""
    if not text.strip():
        return None, False
    ids = tokenizer.encode(text, "src", vocab) if ids is None else ids
    if not ids:
        return None, False
    return framed(ids, reverse, max_source_len), len(ids) > max_source_len - 2


def decode_text(ids, tokenizer, vocab: Vocab) -> str:
    """Target ids (up to <eos>) -> text."""
    return tokenizer.decode(ids, "tgt", vocab)


def target_ids(tokens: list[str], vocab: Vocab) -> list[int]:
    return [SOS_ID] + vocab.ids(tokens) + [EOS_ID]


def max_target_len(src_len: int, decoding, cap: int | None = None) -> int:
    """The decoding budget of a source of src_len ids (<sos>, <eos> included): decoding.max_len_a *
    src_len + decoding.max_len_b target tokens (<eos> included), at most cap (default decoding.max_len)."""
    return int(min(cap or decoding.max_len, decoding.max_len_a * src_len + decoding.max_len_b))
