"""Source augmentation: each modifier, the target's casing, draws per seed and epoch, validation
untouched, and the same rows for any number of processes."""
import numpy as np
import pytest

from runtime.prepare import TextConfig
from runtime.tokenizer import Tokenizer
from runtime.vocab import Vocab
from tests.conftest import TINY
from trainer import augment
from trainer.augment import BIT, apply, epoch_masks
from trainer.config import AugmentConfig, TrainConfig
from trainer.data import PairIds, batch_groups
from trainer.token_cache import build, prepare_pair

PAIR = ("Where is Anna's station?", "Où est la gare d'Anna ?")


@pytest.mark.parametrize("bits, src, tgt", [
    (BIT["lowercase"], "where is anna's station?", PAIR[1]),
    (BIT["lower_first"], "where is Anna's station?", PAIR[1]),
    (BIT["strip_punct"], "Where is Anna's station", PAIR[1]),
    (BIT["lowercase"] | BIT["strip_punct"], "where is anna's station", PAIR[1]),
    (BIT["upper"], "WHERE IS ANNA'S STATION?", "OÙ EST LA GARE D'ANNA ?"),
    (BIT["title"], "Where Is Anna's Station?", "Où Est La Gare D'anna ?"),
    # casing modifiers exclude each other, strongest first
    (BIT["upper"] | BIT["lowercase"] | BIT["title"], "WHERE IS ANNA'S STATION?", "OÙ EST LA GARE D'ANNA ?"),
    (BIT["lowercase"] | BIT["lower_first"], "where is anna's station?", PAIR[1]),
])
def test_each_modifier(bits, src, tgt):
    assert apply(*PAIR, bits) == (src, tgt)


def test_final_punctuation_in_every_form():
    for text in ("Où est la gare ?", "Wait...", "Really?!", "Stop… "):
        assert augment.strip_final_punctuation(text) in ("Où est la gare", "Wait", "Really", "Stop")
    assert augment.strip_final_punctuation("?!") == "?!"  # nothing but punctuation: kept


def test_casing_modifiers_meet_the_runtime_rule():
    """With restore_case (the default) an ALL CAPS or Title Case pair is trained as the runtime reads
    it: both sides in sentence case; as typed otherwise."""
    on, off = TextConfig("en", "fr", restore_case=True), TextConfig("en", "fr", restore_case=False)
    upper = apply(*PAIR, BIT["upper"])
    assert prepare_pair(*upper, on) == ("Where is anna's station?", "Où est la gare d'anna ?")
    assert prepare_pair(*upper, off) == upper
    assert prepare_pair(*apply(*PAIR, BIT["title"]), on) == ("Where is anna's station?", "Où est la gare d'anna ?")


def test_draws_are_fixed_by_seed_and_epoch_and_follow_the_rates():
    rates = AugmentConfig(lowercase=0.3, lower_first=0.1, strip_punct=0.5, upper=0.0, title=0.05)
    a = epoch_masks(20_000, rates, seed=1, epoch=3)
    assert np.array_equal(a, epoch_masks(20_000, rates, seed=1, epoch=3))
    assert not np.array_equal(a, epoch_masks(20_000, rates, seed=1, epoch=4))
    assert not np.array_equal(a, epoch_masks(20_000, rates, seed=2, epoch=3))
    for name, rate in vars(rates).items():
        share = ((a & BIT[name]) > 0).mean()
        assert abs(share - rate) <= 4 * np.sqrt(rate * (1 - rate) / len(a)) + 1e-9, name
    assert epoch_masks(10, AugmentConfig.off(), seed=1, epoch=1) is None


@pytest.fixture
def pairs_data():
    pairs = [(f"Sentence number {i} is here.", f"La phrase {i} est là.") for i in range(40)]
    tok, text = Tokenizer(lowercase=False), TextConfig("en", "fr", restore_case=True)
    cache = build(iter(pairs), tok, text=text)
    src_vocab = Vocab.from_counts(cache.counts("src"))
    tgt_vocab = Vocab.from_counts(cache.counts("tgt"))
    return PairIds(cache, np.arange(len(cache)), src_vocab, tgt_vocab, True, 50, tok, text), src_vocab


def test_a_batch_rewrites_only_the_rows_its_masks_mark(pairs_data):
    data, src_vocab = pairs_data
    masks = np.zeros(len(data), dtype=np.uint8)
    masks[[3, 7]] = BIT["lowercase"] | BIT["strip_punct"]
    plain, _, _ = data.batch(np.arange(10))
    changed, _, _ = data.batch(np.arange(10), masks)
    differs = [k for k in range(10) if not np.array_equal(plain[k], changed[k])]
    assert differs == [3, 7]
    row = changed[3][changed[3] > 0].tolist()  # <sos>, the source reversed, <eos>; no padding
    words = src_vocab.tokens(row[1:-1][::-1])
    assert words == ["<unk>", "number", "3", "is", "here"]  # lower-cased ("sentence" is not in this cased vocabulary), no "."


def test_process_shares_of_a_batch_read_the_same_draws(pairs_data):
    """torchrun splits each global batch into shares; a row is rewritten the same whichever
    process holds it, so the union of the shares is the one-process batch."""
    data, _ = pairs_data
    masks = epoch_masks(len(data), AugmentConfig(lowercase=0.5, strip_punct=0.5), seed=0, epoch=1)
    group = np.arange(16)
    whole, _, _ = data.batch(group, masks)
    rows = {tuple(r[r > 0].tolist()) for r in whole}
    shares = set()
    for rank in range(3):
        part, _, _ = data.batch(group[rank::3], masks)
        shares |= {tuple(r[r > 0].tolist()) for r in part}
    assert shares == rows


@pytest.mark.slow
def test_training_batches_are_augmented_and_validation_is_not(tmp_path, monkeypatch):
    from trainer.train import fit

    seen = []
    original = PairIds.batch
    monkeypatch.setattr(PairIds, "batch", lambda self, idx, masks=None: seen.append((len(self), masks)) or original(self, idx, masks))
    fit(TrainConfig.from_flat(**dict(TINY, epochs=1, augment="strip_punct=1"), out=str(tmp_path)))
    train_n = max(n for n, _ in seen)
    assert all(m is not None and (m & BIT["strip_punct"]).all() for n, m in seen if n == train_n)
    assert all(m is None for n, m in seen if n != train_n) and any(n != train_n for n, _ in seen)


def test_no_augment_draws_nothing():
    assert epoch_masks(100, TrainConfig.from_flat(augment=AugmentConfig.off()).augment, 0, 1) is None
    assert len(batch_groups(np.full(10, 3), 4)) == 3
