"""Texts split into sentences, translated together, put back with the writer's spacing."""
import warnings

import pytest

from runtime import Translator
from runtime.segment import sentence_spans, whole_span
from runtime.translator import TruncationWarning


@pytest.fixture(scope="module")
def translator(tiny_spm_onnx):
    return Translator(tiny_spm_onnx, device="cpu")


def test_sentence_spans_keep_everything_between_them():
    text = "  Hello Mr. Smith.  How are you?\nFine!\n\n  Bye. "
    spans = sentence_spans(text, "en")
    assert [text[a:b] for a, b in spans] == ["Hello Mr. Smith.", "How are you?", "Fine!", "Bye."]
    assert text[spans[0][1]: spans[1][0]] == "  " and text[spans[1][1]: spans[2][0]] == "\n"
    assert whole_span(" \t ") == [] and whole_span(" a b ") == [(1, 4)]


def test_a_paragraph_is_its_sentences_translated_one_by_one(translator):
    sentences = ["Where is the station?", "She is tired.", "We have 5 dogs."]
    text = f" {sentences[0]}  {sentences[1]}\n{sentences[2]}\t"
    alone = [translator.translate(s) for s in sentences]
    assert translator.translate(text) == f" {alone[0]}  {alone[1]}\n{alone[2]}\t"
    # in a batch of several texts, and with scores: the same, each text's score the sum of its sentences'
    assert translator.translate(["hello", text])[1] == translator.translate(text)
    hyps = translator.translate([text], beam_size=2, n_best=2, return_scores=True)[0]
    one = [translator.translate(s, beam_size=2, n_best=2, return_scores=True) for s in sentences]
    assert hyps[0].text == f" {one[0][0].text}  {one[1][0].text}\n{one[2][0].text}\t"
    assert hyps[0].score == pytest.approx(sum(h[0].score for h in one), abs=1e-4)
    # --no-split: the text is one sentence for the model
    assert translator.codec.units(0, text, split=False)[0].prepared == " ".join(text.split())


def test_blank_text_comes_back_unchanged(translator):
    blanks = ["", " ", "\n", " \t \n "]
    assert translator.translate(blanks) == blanks
    assert translator.translate(blanks, split_sentences=False) == blanks
    assert translator.translate("  hello  ") == f"  {translator.translate('hello')}  "


def test_a_long_text_without_punctuation_is_cut_to_fit_not_truncated(translator):
    """20,000 characters without punctuation: cut on whitespace into pieces the model takes whole,
    so the work is bounded by the model's maximum length per piece, and nothing is dropped."""
    words = ("where is the station and the cat is black " * 600).split()
    text = " ".join(words)[:20_000].rsplit(" ", 1)[0]
    units = translator.codec.units(0, text, split=True)
    limit = translator.config.max_source_len - 2
    sizes = [len(translator.tokenizer.tokenize(u.prepared, "src")) for u in units]
    assert max(sizes) <= limit and sum(sizes) == len(translator.tokenizer.tokenize(text, "src"))
    assert len(units) == -(-sum(sizes) // limit) or len(units) == -(-sum(sizes) // limit) + 1  # greedy packing
    assert " ".join(u.prepared for u in units) == text
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        out = translator.translate(text)
    assert out.count(" ") >= len(units) - 1 and out.strip()


def _sentencex_spans(text: str, language: str) -> list[tuple[int, int]]:
    """What sentence_spans gave before its shortcut: sentencex on every line."""
    import re

    import sentencex

    spans = []
    for line in re.finditer(r"[^\n]+", text):
        for b in sentencex.get_sentence_boundaries(language, line.group()):
            segment = line.group()[b["start_index"]: b["end_index"]]
            if segment.strip():
                start = line.start() + b["start_index"] + len(segment) - len(segment.lstrip())
                spans.append((start, start + len(segment.strip())))
    return spans


def test_one_sentence_lines_skip_sentencex_and_split_as_it_does(monkeypatch):
    """Lines of words, spaces, commas, apostrophes and hyphens with at most one final . ! or ? are
    taken whole without sentencex: in every language it knows (Armenian splits "?." -- not such a
    line), on random lines of that form, it would not have split them either."""
    import random

    import sentencex

    rng = random.Random(0)
    letters = list("abcxyzABCXYZ019_éÉßжЖΩ中") + [" "] * 6 + [",", "'", "’", "-", "\t"]
    languages = ["en", "fr", "de", "hy", "el", "ar", "zh", "ja", "hi", "ru", "es", "am", "my", "xx", ""]
    lines = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 30))) + rng.choice(["", ".", "!", "?"])
             + rng.choice(["", " ", "\t "]) for _ in range(3000)]
    expected = {(line, lang): _sentencex_spans(line, lang or "en") for line in lines for lang in languages}
    calls = []
    real = sentencex.get_sentence_boundaries
    monkeypatch.setattr(sentencex, "get_sentence_boundaries", lambda *a: calls.append(a) or real(*a))
    for (line, lang), spans in expected.items():
        assert sentence_spans(line, lang or None) == spans, (line, lang)
    assert not calls  # taken whole, and rightly
    # anything else still goes to sentencex, whose split stands
    for text, lang in [("Hello Mr. Smith. How are you?", "en"), ("Wait... what?", "en"), ("He said: \"go\".", "en"),
                       ("It costs 3.5 euros.", "en"), ("x?.", "hy"), ("Abc def.)", "en"), ("Ab '' Cd e.'", "fr")]:
        spans = _sentencex_spans(text, lang)
        calls.clear()
        assert sentence_spans(text, lang) == spans and len(calls) == 1
    assert len(sentence_spans("x?.", "hy")) == 2 and len(sentence_spans("Abc def.)", "en")) == 2  # sentencex's own splits
