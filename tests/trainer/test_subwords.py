"""`trainer fit --vocab sentencepiece`: models trained on the training split only, cached and
reused, carried by the checkpoint as bytes; `--vocab word` as before."""
import pytest
import torch

from trainer.config import DataConfig
from trainer.data import split_rows
from trainer import subwords


def _corpus(tmp_path, marked_rows, n=400):
    """A TSV of n pairs; the given rows carry the letter "ж" on both sides, no other row does."""
    words = ["cat", "dog", "house", "green", "table", "runs", "sleeps", "blue", "Paul", "Marie"]
    lines = []
    for i in range(n):
        en = " ".join(words[(i * k) % len(words)] for k in (1, 3, 7)) + f" {i}"
        fr = " ".join(words[(i * k + 1) % len(words)] for k in (1, 3, 7)) + f" {i}"
        if i in marked_rows:
            en, fr = en + " жжж", fr + " жжж"
        lines.append(f"{en}\t{fr}")
    path = tmp_path / "corpus.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("where", ["valid", "train"])
def test_models_learn_from_the_training_split_only(tmp_path, where):
    seed, n = 3, 400
    train_rows, valid_rows = split_rows(n, 0.05, seed)
    marked = set(valid_rows.tolist()) if where == "valid" else set(train_rows[:20].tolist())
    d = DataConfig(source=str(_corpus(tmp_path, marked, n)), vocab_size=120)
    tok = subwords.sentencepiece_tokenizer(d, seed, tmp_path / "cache")
    seen = any("ж" in p for side in ("src", "tgt") for p in tok.pieces(side))
    assert seen == (where == "train")  # the validation rows' letter never reaches the vocabulary


def test_models_are_cached_and_reused(tmp_path, monkeypatch):
    d = DataConfig(source=str(_corpus(tmp_path, set())), vocab_size=100)
    first = subwords.sentencepiece_tokenizer(d, 0, tmp_path / "cache")
    monkeypatch.setattr(subwords, "train_model", lambda *a, **k: pytest.fail("retrained"))
    again = subwords.sentencepiece_tokenizer(d, 0, tmp_path / "cache")
    assert (again.source_model, again.target_model) == (first.source_model, first.target_model)
    assert subwords.sentencepiece_tokenizer(DataConfig(source=d.source, vocab_size=101), 0, tmp_path / "cache",
                                            build=False) is None  # another size is another model


def test_bpe_and_unigram_and_vocab_size(tmp_path):
    path = str(_corpus(tmp_path, set()))
    for model in ("bpe", "unigram"):
        tok = subwords.sentencepiece_tokenizer(DataConfig(source=path, vocab_size=90, subword_model=model), 0,
                                               tmp_path / model)
        assert len(tok.pieces("src")) <= 90 and tok.pieces("src")[:4] == ["<pad>", "<unk>", "<sos>", "<eos>"]


def test_checkpoint_carries_the_models_as_bytes(tiny_spm_run):
    raw = torch.load(tiny_spm_run / "checkpoint.pth", weights_only=True)
    tok = raw["tokenizer"]
    assert tok["type"] == "sentencepiece" and isinstance(tok["source_model"], bytes) and tok["lowercase"] is False
    from runtime.tokenizer import from_state

    assert from_state(tok).pieces("src") == raw["src_vocab"] and from_state(tok).pieces("tgt") == raw["tgt_vocab"]
    assert raw["train_config"]["data"]["vocab"] == "sentencepiece"


def test_word_vocabulary_unchanged(tiny_run):
    raw = torch.load(tiny_run / "checkpoint.pth", weights_only=True)
    assert raw["tokenizer"] == {"type": "word", "lowercase": True, "capitalize": True}
    assert all("▁" not in t for t in raw["src_vocab"])


def test_saved_config_without_vocab_is_a_word_run():
    from trainer.config import TrainConfig

    assert TrainConfig.from_dict({"source": "builtin", "lowercase": True}).data.vocab == "word"
    assert TrainConfig().data.vocab == "sentencepiece"
