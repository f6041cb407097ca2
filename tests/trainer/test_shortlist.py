"""The shortlist the trainer builds: frequent target ids, and per source id its most associated ones."""
import numpy as np

from trainer.shortlist import build_shortlist


class Pairs:
    """Sentence pairs of vocabulary ids, with PairIds's interface for the builder."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self):
        return len(self.pairs)

    def side_ids(self, side, idx):
        return [np.array(self.pairs[i][0 if side == "src" else 1], dtype=np.int64) for i in idx]


def test_frequent_ids_and_each_source_ids_translation():
    # target 5 is in every sentence (frequent); source 10 always comes with target 20, source 11 with 21;
    # source 12 with 22 once and with 21 once (its best is the rarer 22: Dice favours a word's own translation)
    pairs = [([10, 4], [5, 20])] * 6 + [([11, 4], [5, 21])] * 6 + [([12], [5, 22]), ([12], [5, 21])]
    frequent, by_source = build_shortlist(Pairs(pairs), 16, 32, frequent=1, per_source=2)
    assert frequent.tolist() == [5] and frequent.dtype == np.int32
    assert by_source.shape == (16, 2) and by_source.dtype == np.int32
    assert by_source[10].tolist() == [20, -1]  # 5 is frequent, so not repeated; -1 pads the row
    assert by_source[11].tolist() == [21, -1]
    assert by_source[12].tolist() == [22, 21]
    assert by_source[4][0] in (20, 21) and (by_source[:4] == -1).all()  # specials never occur in the data


def test_specials_are_never_listed_and_chunks_add_up(monkeypatch):
    import trainer.shortlist as shortlist

    rng = np.random.default_rng(0)
    pairs = [(rng.integers(4, 40, 5).tolist(), rng.integers(0, 60, 6).tolist()) for _ in range(50)]
    whole = build_shortlist(Pairs(pairs), 40, 60, frequent=10, per_source=8)
    monkeypatch.setattr(shortlist, "CHUNK", 7)  # counts gathered over 8 chunks must be the same counts
    chunked = build_shortlist(Pairs(pairs), 40, 60, frequent=10, per_source=8)
    assert all((a == b).all() for a, b in zip(whole, chunked))
    frequent, by_source = whole
    assert not set(frequent.tolist()) & {0, 1, 2, 3} and not set(by_source.ravel().tolist()) & {0, 1, 2, 3}
    assert not set(by_source.ravel().tolist()) & set(frequent.tolist())
