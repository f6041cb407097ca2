import numpy as np
import pytest

from trainer.data import DataError, DataOptions, load_corpus, split_rows
from tests.conftest import MULTI30K, TATOEBA, needs_shared


def test_tsv_anki_format_with_bad_rows(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("Go.\tVa !\tCC-BY 2.0 (France)\nHi.\tSalut !\n\tvide\nno tab here\n", encoding="utf-8")
    c = load_corpus(str(f))
    assert c.pairs == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert c.skipped == 2


def test_csv_columns_and_choice(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text('English,French,Other\nhello,bonjour,x\n"yes, sir","oui, monsieur",y\nbroken\n', encoding="utf-8")
    c = load_corpus(str(f))
    assert c.pairs == [("hello", "bonjour"), ("yes, sir", "oui, monsieur")] and c.skipped == 1
    assert load_corpus(str(f), DataOptions(src_col="French", tgt_col="English")).pairs[0] == ("bonjour", "hello")
    with pytest.raises(DataError, match="no column 'Anglais'"):
        load_corpus(str(f), DataOptions(src_col="Anglais"))


def test_prefix_layout(tmp_path):
    (tmp_path / "train.de").write_text("ein Hund\nzwei Katzen\n", encoding="utf-8")
    (tmp_path / "train.en").write_text("a dog\ntwo cats\n", encoding="utf-8")
    c = load_corpus(str(tmp_path / "train"), DataOptions(src_lang="de", tgt_lang="en"))
    assert c.pairs == [("ein Hund", "a dog"), ("zwei Katzen", "two cats")]


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"\tx\n\n", "empty"),
    (b"hello\tbonjour\n\xff\xfe bad\tx\n", "line 2 is not valid UTF-8"),
])
def test_bad_files(tmp_path, content, message):
    f = tmp_path / "bad.tsv"
    f.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_corpus(str(f))


def test_missing_file_and_unknown_scheme(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_corpus(str(tmp_path / "nope.tsv"))
    with pytest.raises(DataError, match="unknown --data scheme 'hf'"):
        load_corpus("hf:some/dataset")


def test_builtin_and_max_pairs():
    assert len(load_corpus("builtin", DataOptions(max_pairs=10)).pairs) == 10
    assert load_corpus("builtin:test").pairs[0] != load_corpus("builtin").pairs[0]


def test_valid_split_deterministic_and_disjoint():
    tr, va = split_rows(100, 0.1, seed=3)
    assert len(va) == 10 and len(tr) == 90 and not set(tr) & set(va) and set(tr) | set(va) == set(range(100))
    assert all(np.array_equal(a, b) for a, b in zip(split_rows(100, 0.1, seed=3), (tr, va)))
    assert not np.array_equal(split_rows(100, 0.1, seed=4)[1], va)


def _kaggle_cache(root, owner, slug, version, filename, text):
    folder = root / "datasets" / owner / slug / "versions" / str(version)
    folder.mkdir(parents=True)
    (folder / filename).write_text(text, encoding="utf-8")
    (root / "datasets" / owner / slug / f"{version}.complete").touch()


def test_kaggle_through_a_real_kagglehub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    _kaggle_cache(tmp_path, "rajpulapakura", "english-to-french-small-dataset", 1, "english_french.csv",
                  "English,French\nhello,bonjour\nthank you,merci\n")
    _kaggle_cache(tmp_path, "alice", "pairs", 3, "data.tsv", "cat\tchat\n")
    c = load_corpus("kaggle:rajpulapakura/english-to-french-small-dataset/versions/1")  # default file
    assert c.pairs == [("hello", "bonjour"), ("thank you", "merci")]
    assert load_corpus("kaggle:alice/pairs/versions/3:data.tsv").pairs == [("cat", "chat")]
    assert load_corpus("kaggle:alice/pairs/versions/3").pairs == [("cat", "chat")]  # the only text file


def test_kaggle_unreachable_and_not_cached_is_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    with pytest.raises(DataError) as e:
        load_corpus("kaggle")
    msg = str(e.value)
    assert "not in the kagglehub cache" in msg and "--data PATH" in msg and "\n" not in msg


@needs_shared
def test_reference_corpora_read_by_path():
    t = load_corpus(str(TATOEBA / "test.tsv"))
    assert len(t.pairs) == 1590 and t.skipped == 0
    m = load_corpus(str(MULTI30K / "test_2016_flickr"), DataOptions(src_lang="de", tgt_lang="en"))
    assert len(m.pairs) == 1000


def test_batches_by_token_count_cover_every_row_within_the_cap():
    import numpy as np
    import torch

    from trainer.data import batch_groups

    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 40, size=1000)
    lengths[7] = 500  # longer than the cap: a batch of its own (with one process)
    groups = batch_groups(lengths, 32, torch.Generator().manual_seed(0), batch_tokens=400)
    rows = np.concatenate(groups)
    assert sorted(rows.tolist()) == list(range(1000))
    assert all(len(g) * lengths[g].max() <= 400 for g in groups if len(g) > 1)
    assert [len(g) for g in groups if 7 in g] == [1]
    sizes = {int(lengths[g].max()) // 10: len(g) for g in groups}
    assert sizes[0] > sizes[3]  # short sentences travel in bigger batches


def test_batches_by_token_count_give_every_process_a_share():
    """Long sentences fit few to a batch; with 8 processes each batch still needs 8 sentences,
    or a process would get none (the cap then gives way)."""
    import numpy as np
    import torch

    from trainer.data import batch_groups

    lengths = np.full(200, 100)
    lengths[:50] = 5
    groups = batch_groups(lengths, 32, torch.Generator().manual_seed(0), min_rows=8, batch_tokens=544)
    assert sorted(np.concatenate(groups).tolist()) == list(range(200))
    assert min(len(g) for g in groups) >= 8
    assert max(len(g) for g in groups if lengths[g].max() == 5) > 8  # short ones still in bigger batches
