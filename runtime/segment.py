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


def sentence_spans(text: str, language: str | None) -> list[tuple[int, int]]:
    """The sentences of text, each line on its own, as (start, end) without surrounding whitespace."""
    import sentencex

    spans = []
    for line in _LINE.finditer(text):
        base = line.start()
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
