from trainer import builtin_corpus


def _plain(en: str) -> str:
    """A sentence without its written form: lower-case, no final punctuation, no contractions."""
    en = en.lower().rstrip(".!?").strip()
    for long, short in builtin_corpus.CONTRACTIONS:
        en = en.replace(short, long)
    return en


def test_size_distinct_and_disjoint_test_split():
    train, test = builtin_corpus.pairs("train"), builtin_corpus.pairs("test")
    assert len(set(train)) >= 2000
    assert len(test) >= 200
    # no written form of a test sentence is trained on
    assert not {_plain(e) for e, _ in train} & {_plain(e) for e, _ in test}


def test_deterministic_across_processes_and_hash_seeds():
    """Each process builds the corpus afresh; a set iteration or an unseeded shuffle would make
    two processes (with different string-hash seeds) disagree."""
    import hashlib
    import subprocess
    import sys

    from tests.conftest import ROOT, run_env

    code = ("import hashlib, json; from trainer import builtin_corpus; "
            "print(hashlib.sha256(json.dumps([builtin_corpus.pairs('train'), builtin_corpus.pairs('test')]).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                              env={**run_env(), "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2", "3")}
    import json

    here = hashlib.sha256(json.dumps([builtin_corpus.pairs("train"), builtin_corpus.pairs("test")]).encode()).hexdigest()
    assert digests == {here}


def test_grammar_agreement_negation_questions_numbers_phrases():
    pairs = dict(builtin_corpus.pairs("train") + builtin_corpus.pairs("test"))
    # the grammar generator itself, not just the sample, must produce these
    states = dict(builtin_corpus._state_sentences())
    assert states["she is tired"] == "elle est fatiguée"
    assert states["the girls were not happy"] == "les filles n'étaient pas heureuses"
    assert states["will the women be ready ?"] == "est-ce que les femmes seront prêtes ?"
    verbs = dict(builtin_corpus._verb_sentences())
    assert verbs["i see a red car"] == "je vois une voiture rouge"  # adjective after the noun, agreeing
    assert verbs["she did not buy a green shirt"] == "elle n'a pas acheté de chemise verte"
    assert verbs["will we find the green horses ?"] == "est-ce que nous trouverons les chevaux verts ?"
    assert dict(builtin_corpus._number_sentences())["i have three black cats"] == "j'ai trois chats noirs"
    assert pairs["Hello!"] == "Bonjour !" and pairs["hello"] == "Bonjour" and pairs["thank you"] == "Merci"


def test_written_forms_vary_on_the_english_side_only():
    train = builtin_corpus.pairs("train")
    en = [e for e, _ in train]
    # typed as people type: with and without the full stop, lower-case first letters, contractions
    assert sum(e.endswith(".") for e in en) > 1000 and sum(e[-1].isalnum() for e in en) > 500
    assert sum(e[0].islower() for e in en) > 500 and sum(e[0].isupper() for e in en) > 2000
    assert sum(any(c in e for c in ("n't", "I'm", "'re", "'s ")) for e in en) > 300
    # the french is always written properly: capital first letter, final punctuation
    grammar = [f for e, f in train if (e, f) not in set(f2 for p in builtin_corpus.PHRASES
                                                        for f2 in builtin_corpus._phrase_forms(*p))]
    assert all(f[0].isupper() and f[-1] in ".?!" for f in grammar)
    # one french sentence for every written form of its english
    assert builtin_corpus._written("she is not tired", "elle n'est pas fatiguée", _Rng(0.1, 0.1)) == \
        ("She's not tired", "Elle n'est pas fatiguée.")
    assert builtin_corpus._written("she is not tired", "elle n'est pas fatiguée", _Rng(0.9, 0.3)) == \
        ("she is not tired.", "Elle n'est pas fatiguée.")
    assert builtin_corpus._written("she is not tired", "elle n'est pas fatiguée", _Rng(0.9, 0.2))[0] == "she is not tired"


class _Rng:
    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def test_digits_names_and_cities_are_copied():
    pairs = dict(builtin_corpus._digit_sentences())
    assert pairs["i have 17 blue cars"] == "j'ai 17 voitures bleues"
    assert pairs["Anna is 23 years old"] == "Anna a 23 ans"
    names = dict(builtin_corpus._name_sentences())
    assert names["my name is Paul"] == "je m'appelle Paul" and names["Anna lives in Boston"] == "Anna habite à Boston"
    assert dict(builtin_corpus._state_sentences())["is Anna tired ?"] == "est-ce qu'Anna est fatiguée ?"
    train = builtin_corpus.pairs("train")
    assert sum(any(ch.isdigit() for ch in e) for e, _ in train) >= 400
    assert len({n for n, _ in builtin_corpus.NAMES if any(n in e for e, _ in train)}) == len(builtin_corpus.NAMES)
