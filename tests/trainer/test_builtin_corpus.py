from trainer import builtin_corpus


def test_size_distinct_and_disjoint_test_split():
    train, test = builtin_corpus.pairs("train"), builtin_corpus.pairs("test")
    assert len(set(train)) >= 2000
    assert len(test) >= 200
    assert not {e for e, _ in train} & {e for e, _ in test}


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
    assert verbs["i see a black car"] == "je vois une voiture noire"  # adjective after the noun, agreeing
    assert verbs["she did not buy a white shirt"] == "elle n'a pas acheté de chemise blanche"
    assert verbs["will we find the grey horses ?"] == "est-ce que nous trouverons les chevaux gris ?"
    assert dict(builtin_corpus._number_sentences())["i have three black cats"] == "j'ai trois chats noirs"
    assert pairs["hello"] == "bonjour" and pairs["thank you"] == "merci"
