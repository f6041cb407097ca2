"""Sentence segmenters for paragraphs (which one the runtime uses): sentencex against
sentence-splitter, on paragraphs of 3-5 consecutive test sentences joined by a space, in English,
French and German. A join is found when the segmenter cuts exactly there; an extra cut is one
inside a test sentence (some test sentences are two sentences: "Hi. How are you?").

    pip install sentencex sentence-splitter && python benchmarks/segmenters.py
"""
from __future__ import annotations

import argparse
import random
import time

from common import MULTI30K, TATOEBA, emit, machine, require_shared

CORPORA = {  # language -> test sentences
    "en": lambda: [l.split("\t")[0] for l in _lines(TATOEBA / "test.tsv")] + _lines(MULTI30K / "test_2016_flickr.en"),
    "fr": lambda: [l.split("\t")[1] for l in _lines(TATOEBA / "test.tsv")] + _lines(MULTI30K / "test_2016_flickr.fr"),
    "de": lambda: _lines(MULTI30K / "test_2016_flickr.de"),
}


def _lines(path) -> list[str]:
    return [l.strip() for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


def paragraphs(sentences: list[str], rng: random.Random) -> list[list[str]]:
    out, i = [], 0
    while i < len(sentences):
        k = rng.randint(3, 5)
        out.append(sentences[i : i + k])
        i += k
    return [p for p in out if len(p) > 1]


def sentencex_cuts(lang: str):
    import sentencex

    def cuts(text: str) -> set[int]:
        return {len(text[: b["end_index"]].rstrip()) for b in sentencex.get_sentence_boundaries(lang, text)[:-1]}

    return cuts


def splitter_cuts(lang: str):
    from sentence_splitter import SentenceSplitter

    splitter = SentenceSplitter(language=lang)

    def cuts(text: str) -> set[int]:
        # it may change the whitespace it returns (French "vous ?"): align on non-space characters
        ends = [i + 1 for i, c in enumerate(text) if not c.isspace()]  # non-space char n ends at ends[n - 1]
        found, count = set(), 0
        for sentence in splitter.split(text)[:-1]:
            count += sum(not c.isspace() for c in sentence)
            found.add(ends[count - 1])
        return found

    return cuts


SEGMENTERS = {"sentencex": sentencex_cuts, "sentence-splitter": splitter_cuts}


def measure(cuts, paras: list[list[str]]) -> dict:
    found = joins = extra = exact = chars = 0
    start = time.perf_counter()
    for para in paras:
        text = " ".join(para)
        truth, pos = set(), 0
        for s in para[:-1]:
            pos += len(s)
            truth.add(pos)
            pos += 1
        got = cuts(text)
        found += len(truth & got)
        joins += len(truth)
        extra += len(got - truth)
        exact += got == truth
        chars += len(text)
    seconds = time.perf_counter() - start
    return {"joins_found": round(found / joins, 4), "extra_cuts_per_paragraph": round(extra / len(paras), 4),
            "exact_paragraphs": round(exact / len(paras), 4), "us_per_1000_chars": round(1e6 * seconds / chars * 1000, 1),
            "paragraphs": len(paras)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200 paragraphs per language")
    args = ap.parse_args()
    require_shared()
    results = {}
    for lang, corpus in CORPORA.items():
        paras = paragraphs(corpus(), random.Random(0))
        if args.quick:
            paras = paras[:200]
        for name, make in SEGMENTERS.items():
            r = measure(make(lang), paras)
            results[f"{lang} {name}"] = r
            print(f"{lang} {name:18s} joins found {r['joins_found']:.2%}  extra cuts/paragraph {r['extra_cuts_per_paragraph']:.3f}  "
                  f"exact {r['exact_paragraphs']:.2%}  {r['us_per_1000_chars']:.0f} us/1000 chars  ({r['paragraphs']} paragraphs)")
    emit({"segmenters": results, "machine": machine()})


if __name__ == "__main__":
    main()
