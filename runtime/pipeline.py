"""Texts -> translations, for the runtime's onnxruntime sessions and the trainer's PyTorch adapters
alike: split each text into sentences, prepare each (runtime/prepare.py), decode all sentences of
all texts in one batched job, and put each text back together around the translations.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.decode import decode_rows
from runtime.prepare import TextConfig, prepare_source, restore_casing
from runtime.segment import sentence_spans, whole_span
from runtime.vocab import Vocab, decode_text, encode_text

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Unit:
    """One stretch of an input text that the model translates on its own."""

    text: int  # which input text
    start: int  # its span in that text
    end: int
    prepared: str  # what the model reads
    casing: str  # for restore_casing
    ids: tuple[int, ...] | None = None  # its source token ids, when splitting counted them already


@dataclass(frozen=True)
class TextCodec:
    """A model's way between text and ids (from its folder or its checkpoint)."""

    tokenizer: object
    src_vocab: Vocab
    tgt_vocab: Vocab
    reverse_source: bool
    max_source_len: int  # ids, <sos> and <eos> included
    text: TextConfig

    def units(self, index: int, text: str, split: bool) -> list[Unit]:
        """The text's sentences (or the whole text); with split, a sentence of more source tokens than
        the model takes is cut on whitespace into pieces that fit."""
        out = []
        for start, end in sentence_spans(text, self.text.source_language) if split else whole_span(text):
            prepared, kind = prepare_source(text[start:end], self.text)
            ids = tuple(self.tokenizer.encode(prepared, "src", self.src_vocab)) if split else None
            if split and len(ids) > self.max_source_len - 2:
                out += [Unit(index, a, b, p, kind) for a, b, p in self._pieces(text, start, end, prepared)]
            else:
                out.append(Unit(index, start, end, prepared, kind, ids))
        return out

    def _pieces(self, text: str, start: int, end: int, prepared: str) -> list[tuple[int, int, str]]:
        """Consecutive runs of words of at most max_source_len - 2 tokens (a longer single word is
        one piece, truncated later). Preparing changes only case and spacing, so the prepared text's
        words are the span's words, one for one; a word's pieces never cross whitespace."""
        spans, words = list(_WORD.finditer(text, start, end)), prepared.split(" ")
        if len(spans) != len(words):  # cannot happen with prepare_source; be safe: no cut
            return [(start, end, prepared)]
        limit, pieces, first, tokens = self.max_source_len - 2, [], 0, 0
        for k, word in enumerate(words):
            n = len(self.tokenizer.tokenize(word, "src"))
            if k > first and tokens + n > limit:
                pieces.append((spans[first].start(), spans[k - 1].end(), " ".join(words[first:k])))
                first, tokens = k, 0
            tokens += n
        pieces.append((spans[first].start(), spans[-1].end(), " ".join(words[first:])))
        return pieces

    def source_ids(self, prepared: str, ids=None) -> tuple[list[int] | None, bool]:
        """-> source ids (None for text without a token, e.g. only control characters), truncated?
        ids: prepared's token ids, if counted already (one SentencePiece call a sentence, not two)."""
        return encode_text(prepared, self.tokenizer, self.src_vocab, self.reverse_source, self.max_source_len, ids)

    def output(self, ids, unit: Unit) -> str:
        return restore_casing(decode_text(ids, self.tokenizer, self.tgt_vocab), unit.casing)


def assemble(text: str, units: list[Unit], translations: list[str]) -> str:
    """The text with each unit's span replaced by its translation; everything else kept."""
    out, pos = [], 0
    for unit, translation in zip(units, translations):
        out += [text[pos: unit.start], translation]
        pos = unit.end
    return "".join(out) + text[pos:]


@dataclass
class Prepared:
    """Texts cut into units and encoded: what a decoder must run, and how to put the texts back."""

    texts: list[str]
    units: list[list[Unit]]  # per text
    rows: list[list[int] | None]  # per unit, all texts one after the other: source ids, None if no token
    truncated: int  # units cut at the model's maximum length


def prepare_texts(codec: TextCodec, texts: list[str], split: bool = True) -> Prepared:
    units = [codec.units(i, text, split) for i, text in enumerate(texts)]
    rows, truncated = [], 0
    for unit in (u for us in units for u in us):
        ids, cut = codec.source_ids(unit.prepared, unit.ids)
        rows.append(ids)
        truncated += cut
    return Prepared(list(texts), units, rows, truncated)


def finish_texts(codec: TextCodec, prepared: Prepared, decoded: list) -> list[list[tuple[str, float]]]:
    """decoded: per unit, its hypotheses [(target ids, score), ...] (None for a unit without a token)
    -> for each text its hypotheses (text, score): the k-th joins its units' k-th, scores summed."""
    flat = [u for us in prepared.units for u in us]
    hyps = [[(codec.output(ids, unit), score) for ids, score in d] if d is not None else [("", 0.0)]
            for unit, d in zip(flat, decoded)]
    results, k = [], 0
    for text, us in zip(prepared.texts, prepared.units):
        mine, k = hyps[k: k + len(us)], k + len(us)
        n = min((len(h) for h in mine), default=1)
        results.append([(assemble(text, us, [h[j][0] for h in mine]), sum(h[j][1] for h in mine)) for j in range(n)])
    return results


def translate_texts(codec: TextCodec, encoder, decoder, texts: list[str], decoding, *, split: bool = True,
                    max_len: int | None = None, batch_size: int = 32, beam_size: int = 1, n_best: int = 1,
                    length_penalty: float = 0.0, with_scores: bool = False) -> tuple[list[list[tuple[str, float]]], int]:
    """-> for each text its n_best (translation, score), and how many units were truncated.

    A text's k-th hypothesis joins the k-th hypothesis of each of its sentences; its score is the
    sum of theirs. A blank text comes back as it is (score 0).
    """
    prepared = prepare_texts(codec, texts, split)
    rows = {k: ids for k, ids in enumerate(prepared.rows) if ids is not None}
    decoded = decode_rows(encoder, decoder, rows, decoding, max_len=max_len, batch_size=batch_size,
                          beam_size=beam_size, n_best=n_best, length_penalty=length_penalty, with_scores=with_scores)
    return finish_texts(codec, prepared, [decoded.get(k) for k in range(len(prepared.rows))]), prepared.truncated
