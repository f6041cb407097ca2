"""Texts -> the spans the model translates one at a time: lines, then sentences (sentencex).

Spans are (start, end) character offsets into the text, so everything between and around them
(line breaks, the spaces after a full stop, leading indentation) stays as the writer put it.
sentencex was measured against sentence-splitter on English, French and German paragraphs: the
same accuracy, 20-30x faster (docs/benchmarks.md, benchmarks/segmenters.py).
"""
from __future__ import annotations

import re

DEFAULT_LANGUAGE = "en"  # for folders that don't say which language they read
_LINE = re.compile(r"[^\n]+")
# A line of only words, spaces, tabs, commas, apostrophes and hyphens, with at most one . ! or ? at
# its end, is one sentence for sentencex in every language (tests/runtime/test_segment.py checks it
# against sentencex); such lines, nearly all of what is typed one sentence at a time (99.7% of
# Tatoeba's test sources), skip its call: ~30 µs a sentence once decoding has left the caches cold,
# ~2% of a sentence's time at batch 1.
_ONE_SENTENCE = re.compile(r"[\w \t,'’-]*[.!?]?[ \t]*")


def sentence_spans(text: str, language: str | None) -> list[tuple[int, int]]:
    """The sentences of text, each line on its own, as (start, end) without surrounding whitespace."""
    spans = []
    for line in _LINE.finditer(text):
        base = line.start()
        if _ONE_SENTENCE.fullmatch(line.group()):
            spans += [(base + a, base + b) for a, b in whole_span(line.group())]
            continue
        import sentencex  # here: a text of such lines alone needs neither its call nor its import

        for b in sentencex.get_sentence_boundaries(language or DEFAULT_LANGUAGE, line.group()):
            segment = line.group()[b["start_index"]: b["end_index"]]
            stripped = segment.strip()
            if stripped:
                start = base + b["start_index"] + (len(segment) - len(segment.lstrip()))
                spans.append((start, start + len(stripped)))
    return spans


def whole_span(text: str) -> list[tuple[int, int]]:
    """The text as one span, without its surrounding whitespace (none for blank text)."""
    stripped = text.strip()
    if not stripped:
        return []
    start = len(text) - len(text.lstrip())
    return [(start, start + len(stripped))]
