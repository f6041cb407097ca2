"""The token cache: the same ids as direct tokenization, built once and reused, rebuilt on change."""
import numpy as np
import pytest

from runtime.tokenizer import Tokenizer
from runtime.vocab import Vocab, source_ids, target_ids
from runtime.prepare import TextConfig
from trainer import token_cache
from trainer.data import DataOptions, PairIds, cached_tokens, load_corpus

TEXT = "".join(f"The cat {i} is black.\tLe chat {i} est noir.\n" for i in range(300)) + \
    "Hello!\tBonjour !\n\tskipped row\n" + "a b c d e f g h i j k l m n o p\tx y z\n"


@pytest.fixture
def corpus(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text(TEXT, encoding="utf-8")
    return f


def _direct(pairs, tok, sv, tv, reverse, max_src):
    return ([source_ids(tok.tokenize(s), sv, reverse, max_src) for s, _ in pairs],
            [target_ids(tok.tokenize(t), tv) for _, t in pairs])


@pytest.mark.parametrize("reverse,max_src", [(True, 100), (False, 100), (True, 6)])
def test_cached_ids_equal_direct_tokenization(corpus, tmp_path, reverse, max_src):
    tok = Tokenizer()
    pairs = load_corpus(str(corpus)).pairs
    cache = cached_tokens(str(corpus), DataOptions(), tok, TextConfig(), tmp_path / "cache")
    assert len(cache) == len(pairs) == 302 and cache.skipped == 1
    # a vocabulary that leaves some words out, so <unk> mapping is exercised too
    sv = Vocab.build((tok.tokenize(s) for s, _ in pairs[:150]), min_freq=1)
    tv = Vocab.build((tok.tokenize(t) for _, t in pairs[:150]), min_freq=1)
    data = PairIds(cache, np.arange(len(cache)), sv, tv, reverse, max_src)
    src, src_len, tgt = data.batch(np.arange(len(cache)))
    want_src, want_tgt = _direct(pairs, tok, sv, tv, reverse, max_src)
    assert [row[:n].tolist() for row, n in zip(src, src_len)] == want_src
    assert [[t for t in row.tolist() if t] for row in tgt] == want_tgt
    assert data.src_lengths.tolist() == [len(s) for s in want_src]


def test_counts_over_rows_give_the_vocabulary_of_those_rows(corpus, tmp_path):
    tok = Tokenizer()
    pairs = load_corpus(str(corpus)).pairs
    cache = cached_tokens(str(corpus), DataOptions(), tok, TextConfig(), tmp_path / "cache")
    rows = np.arange(0, len(cache), 3)
    for side in (0, 1):
        direct = Vocab.build(tok.tokenize(pairs[r][side]) for r in rows)
        assert Vocab.from_counts(cache.counts(("src", "tgt")[side], rows)) == direct


def test_built_once_then_reused(corpus, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    first = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir)
    assert not first.reused and len(list(cache_dir.iterdir())) == 1
    stamp = {p.name: p.stat().st_mtime_ns for p in first.folder.iterdir()}

    def no_rebuild(*a, **k):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(token_cache, "build", no_rebuild)
    second = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir)
    assert second.reused and isinstance(second.src_ids, np.memmap)
    assert {p.name: p.stat().st_mtime_ns for p in second.folder.iterdir()} == stamp
    assert np.array_equal(first.src_ids, second.src_ids) and first.tgt_tokens == second.tgt_tokens


@pytest.mark.parametrize("change", ["file", "lowercase", "max_pairs"])
def test_rebuilt_when_the_file_or_the_settings_change(corpus, tmp_path, change):
    cache_dir = tmp_path / "cache"
    first = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir)
    opts, tok = DataOptions(), Tokenizer()
    if change == "file":
        corpus.write_text(TEXT + "One more.\tUn de plus.\n", encoding="utf-8")
    elif change == "lowercase":
        tok = Tokenizer(lowercase=False)
    else:
        opts = DataOptions(max_pairs=10)
    second = cached_tokens(str(corpus), opts, tok, TextConfig(), cache_dir)
    assert not second.reused and second.folder != first.folder and len(list(cache_dir.iterdir())) == 2
    assert len(second) == {"file": 303, "lowercase": 302, "max_pairs": 10}[change]
    if change == "lowercase":
        assert "The" in second.src_tokens and "The" not in first.src_tokens


def test_an_incomplete_cache_is_rebuilt(corpus, tmp_path):
    cache_dir = tmp_path / "cache"
    first = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir)
    (first.folder / "tgt_ids.npy").unlink()
    with pytest.warns(UserWarning, match="a file is missing or unreadable"):
        again = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir)
    assert not again.reused and np.array_equal(again.tgt_ids, first.tgt_ids)


def _damage(folder, kind):
    """One kind of damage to a saved cache, as a disk error, a killed copy or an edit leaves it."""
    import json

    ids, offsets = np.load(folder / "src_ids.npy"), np.load(folder / "src_offsets.npy")
    if kind == "id past the tokens":
        ids[5] = len(json.loads((folder / "src_tokens.json").read_text())) + 3
    elif kind == "negative id":
        ids[0] = -1
    elif kind == "float ids":
        ids = ids.astype(np.float32)
    elif kind == "offsets decrease":
        offsets[10], offsets[11] = offsets[11], offsets[10]
    elif kind == "end short of the ids":
        offsets[-1] -= 1
    elif kind == "end past the ids":
        offsets[-1] += 5
    elif kind == "token list too short":
        tokens = json.loads((folder / "src_tokens.json").read_text())
        (folder / "src_tokens.json").write_text(json.dumps(tokens[:3]))
    elif kind == "a pickle":
        np.save(folder / "src_ids.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
        return
    elif kind == "sides of different lengths":
        offsets = offsets[:-1]
        offsets[-1] = len(ids)
    np.save(folder / "src_ids.npy", ids)
    np.save(folder / "src_offsets.npy", offsets)


@pytest.mark.parametrize("kind", ["id past the tokens", "negative id", "float ids", "offsets decrease",
                                  "end short of the ids", "end past the ids", "token list too short", "a pickle",
                                  "sides of different lengths"])
def test_a_damaged_cache_is_rebuilt_with_one_notice(corpus, tmp_path, kind):
    from trainer.data import CacheWarning

    cache_dir = tmp_path / "cache"
    first = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir)
    _damage(first.folder, kind)
    with pytest.warns(CacheWarning, match="is damaged .*: rebuilding it") as caught:
        again = cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir)
    assert len(caught) == 1 and not again.reused
    for name in token_cache.ARRAYS:
        assert np.array_equal(getattr(again, name), getattr(first, name)), name
    assert cached_tokens(str(corpus), DataOptions(), Tokenizer(), TextConfig(), cache_dir).reused  # sound again


def test_worker_processes_give_the_same_cache(corpus, monkeypatch):
    pairs = load_corpus(str(corpus)).pairs
    monkeypatch.setattr(token_cache, "CHUNK", 40)  # several chunks, merged in order
    one = token_cache.build(iter(pairs), Tokenizer(), workers=1)
    two = token_cache.build(iter(pairs), Tokenizer(), workers=2)
    for name in token_cache.ARRAYS:
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert one.src_tokens == two.src_tokens and one.tgt_tokens == two.tgt_tokens


def test_csv_and_prefix_sources_go_through_the_cache(tmp_path):
    (tmp_path / "p.csv").write_text('English,French\nhello,bonjour\n"yes, sir","oui, monsieur"\n', encoding="utf-8")
    (tmp_path / "m.de").write_text("ein Hund\nzwei Katzen\n", encoding="utf-8")
    (tmp_path / "m.en").write_text("a dog\ntwo cats\n", encoding="utf-8")
    c = cached_tokens(str(tmp_path / "p.csv"), DataOptions(), Tokenizer(), TextConfig(), tmp_path / "cache")
    assert c.tgt_tokens == ["bonjour", "oui", ",", "monsieur"] and len(c) == 2
    m = cached_tokens(str(tmp_path / "m"), DataOptions(src_lang="de", tgt_lang="en"), Tokenizer(), TextConfig(),
                      tmp_path / "cache")
    assert m.src_tokens == ["ein", "hund", "zwei", "katzen"] and len(m) == 2


@pytest.mark.slow
def test_fit_reuses_the_cache_on_its_second_run(corpus, tmp_path):
    from click.testing import CliRunner

    from trainer.cli import cli

    args = ["fit", "--data", str(corpus), "--epochs", "1", "--emb-dim", "8", "--hidden-dim", "16", "--layers", "1",
            "--cache-dir", str(tmp_path / "cache")]
    first = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "a")])
    second = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "b")])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "token cache reused" not in first.output and "token cache reused" in second.output
