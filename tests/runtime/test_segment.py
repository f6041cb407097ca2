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
