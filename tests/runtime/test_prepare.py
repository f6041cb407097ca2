"""Input preparation: casing classes, sentence case and its restoration, normalisation."""
import unicodedata

import pytest

from runtime.prepare import (AS_WRITTEN, TITLE, UPPER, TextConfig, casing, normalize, prepare_source, prepare_target,
                             restore_casing, sentence_case)

ON = TextConfig("en", "fr", restore_case=True)


@pytest.mark.parametrize("text, kind", [
    ("WHERE IS THE STATION?", UPPER), ("OK", UPPER), ("I", AS_WRITTEN), ("Where is the station?", AS_WRITTEN),
    ("Where Is The Station?", TITLE), ("Thank You", AS_WRITTEN),  # two words: ordinary text as often as a title
    ("NASA is big", AS_WRITTEN), ("where is the station", AS_WRITTEN), ("123 !", AS_WRITTEN),
    ("Anna Lives In Boston.", TITLE), ("ÉTÉ À PARIS", UPPER),
])
def test_casing_classes(text, kind):
    assert casing(text, "en") == kind


def test_no_title_case_where_nouns_are_capitalised():
    assert casing("Der Hund Bellt Laut", "de") == AS_WRITTEN and casing("DER HUND BELLT", "de") == UPPER


def test_all_caps_is_read_as_sentence_case_and_the_output_recased():
    prepared, kind = prepare_source("  WHERE IS   THE STATION?", ON)
    assert (prepared, kind) == ("Where is the station?", UPPER)
    assert restore_casing("Où est la gare ?", kind) == "OÙ EST LA GARE ?"
    prepared, kind = prepare_source("Where Is The Station", ON)
    assert (prepared, kind) == ("Where is the station", TITLE)
    assert restore_casing("Où est la gare ?", kind) == "Où Est La Gare ?"
    assert restore_casing("Où est la gare ?", AS_WRITTEN) == "Où est la gare ?"


def test_without_restore_case_text_is_read_as_typed():
    assert prepare_source("WHERE IS THE STATION?", TextConfig()) == ("WHERE IS THE STATION?", AS_WRITTEN)
    assert prepare_target("OÙ EST LA GARE ?", TextConfig()) == "OÙ EST LA GARE ?"


def test_targets_are_written_properly():
    """An ALL CAPS or Title Case training target is what the model learns to write only in sentence
    case (the runtime gives the output its casing back); an ordinary target keeps its names."""
    assert prepare_target("OÙ EST LA GARE ?", ON) == "Où est la gare ?"
    assert prepare_target("Anna habite à Boston.", ON) == "Anna habite à Boston."


def test_normalize_composes_and_collapses_spacing():
    decomposed = unicodedata.normalize("NFD", "été")
    assert decomposed != "été" and normalize(f" \t{decomposed}\n  x ") == "été x"
    assert sentence_case("¿QUÉ TAL?") == "¿Qué tal?"


def _casing_per_character(text: str, language: str | None) -> str:
    """The rule, one character at a time (as casing() was written before it used str methods)."""
    import re

    letters = [c for c in text if c.isupper() or c.islower()]
    if len(letters) >= 2 and all(c.isupper() for c in letters):
        return UPPER
    words = [w for w in re.findall(r"\w[\w'’-]*", text) if any(c.isalpha() for c in w)]
    if language in ("de", "lb") or len(words) < 3:
        return AS_WRITTEN
    return TITLE if all(next(c for c in w if c.isalpha()).isupper() for w in words) else AS_WRITTEN


def test_casing_follows_the_rule_on_random_text():
    """Random text of capitals, small letters, digits, apostrophes and hyphens, and its ALL CAPS and
    Title Case forms: the same class as the rule letter by letter. (A title case letter such as "ǅ"
    is no capital for str.isupper: such text is not ALL CAPS; the rule letter by letter ignored it.)"""
    import random

    rng = random.Random(0)
    alphabet = list("aZéÉßжЖΩ中1_'’-.!?") + [" "] * 5
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16))) for _ in range(20000)]
    texts += [t.upper() for t in texts[:3000]] + [t.title() for t in texts[:3000]]
    for text in texts:
        for language in ("en", "de"):
            assert casing(text, language) == _casing_per_character(text, language), (text, language)
    assert {casing(t, "en") for t in texts} == {UPPER, TITLE, AS_WRITTEN}
    assert casing("ǅEMAL", "en") == AS_WRITTEN and casing("ǄEMAL", "en") == UPPER
