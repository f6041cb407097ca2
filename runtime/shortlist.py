"""Lexical shortlist: the target ids a batch of source sentences may need, so the decoder projects
onto those rows of the output layer only (Marian's lexical shortlists, CTranslate2's vocabulary maps).

shortlist.npz (format 4, optional) holds two int32 arrays, written by the trainer (trainer/shortlist.py):
  frequent   (N,)     the N most frequent target ids of the training data
  by_source  (Vs, k)  for each source id, the k target ids most associated with it (Dice of
                      co-occurrence over the training pairs, or over the training sources and the
                      model's own output for them), -1 padding a row with fewer
A batch's candidates are the special ids, the frequent ids and the rows of its source ids, unioned
over the batch and sorted: ties between equal scores resolve to the smaller id as with the whole
vocabulary, and a shortlist holding every id gives exactly the full softmax's output.
"""
from __future__ import annotations

import io

import numpy as np

from runtime.vocab import SPECIAL_IDS


class ShortlistError(ValueError):
    """shortlist.npz is not what config.json describes; the message says what."""


class Shortlist:
    def __init__(self, frequent: np.ndarray, by_source: np.ndarray, tgt_vocab_size: int):
        self.always = np.zeros(tgt_vocab_size, dtype=bool)  # (V,) the specials and the frequent ids
        self.always[list(SPECIAL_IDS.values())] = True
        self.always[frequent] = True
        self.by_source = np.asarray(by_source, dtype=np.int64)  # (Vs, k)

    @classmethod
    def from_bytes(cls, data: bytes, src_vocab_size: int, tgt_vocab_size: int) -> "Shortlist":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                frequent, by_source = npz["frequent"], npz["by_source"]
        except Exception as e:  # zipfile, format and key errors of a corrupt file
            raise ShortlistError(f"not a shortlist ({type(e).__name__})") from None
        for name, a in (("frequent", frequent), ("by_source", by_source)):
            if a.dtype != np.int32:
                raise ShortlistError(f"{name} is {a.dtype}, expected int32")
        if frequent.ndim != 1 or by_source.ndim != 2 or by_source.shape[0] != src_vocab_size:
            raise ShortlistError(f"frequent {frequent.shape} and by_source {by_source.shape}: expected (N,) and "
                                 f"({src_vocab_size}, k)")
        if frequent.size and not (0 <= frequent.min() and frequent.max() < tgt_vocab_size) or \
                by_source.size and not (-1 <= by_source.min() and by_source.max() < tgt_vocab_size):
            raise ShortlistError(f"target ids outside the vocabulary of {tgt_vocab_size}")
        return cls(frequent, by_source, tgt_vocab_size)

    def always_ids(self) -> np.ndarray:
        """(K,) int64, sorted: the ids every batch has (the specials and the frequent ids), which are a
        fixed shortlist's candidates (format 7, no per-source lists)."""
        return np.flatnonzero(self.always)

    def candidates(self, src_ids: np.ndarray) -> np.ndarray:
        """src_ids (B, S) int64 (padding included: <pad>'s row is the specials') -> (K,) int64, sorted."""
        chosen = self.always.copy()  # a mask, not a set union: (V,) bools beat sorting K ids
        rows = self.by_source[src_ids.ravel()].ravel()
        chosen[rows[rows >= 0]] = True
        return np.flatnonzero(chosen)


def to_bytes(frequent: np.ndarray, by_source: np.ndarray) -> bytes:
    """shortlist.npz's bytes (uncompressed: it loads without a decompression step)."""
    buffer = io.BytesIO()
    np.savez(buffer, frequent=np.asarray(frequent, dtype=np.int32), by_source=np.asarray(by_source, dtype=np.int32))
    return buffer.getvalue()


def rows_pay(candidates: int, sentences: int, vocab_size: int, int8: bool) -> bool:
    """Whether a batch of `sentences` should multiply by its `candidates` rows of the output layer,
    given to the decoder as inputs, rather than by the whole projection, which onnxruntime prepacks
    into its MatMul's own layout as a constant: rows that come in as inputs can't be, so they pay
    only while they are few enough. Break-even measured per step on 2 cores with the 8,000 pieces of
    the default model (docs/benchmarks.md, "Format 5"): fp32 at 0.5-1.0 of the vocabulary for any
    batch; int8, whose prepacked kernel gains more, at 0.55 for one sentence, 0.42-0.52 for 2-4,
    0.37 for 8 and 0.45 for 32. Beam search counts its sentences, not its beams."""
    share = 0.5 if not int8 or sentences == 1 else 0.375
    return candidates <= vocab_size * share
