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


def test_from_model_lists_hold_every_target_the_model_writes(tiny_att_run, tiny_att_onnx, tmp_path):
    """`trainer shortlist --from-model` counts the model's own greedy output on the training
    sources: with lists long enough to keep every co-occurring target, each training source's
    candidates hold all that the model (here its exported runtime folder) writes for it."""
    import shutil
    import subprocess

    import torch

    from runtime import Translator
    from runtime.decode import decode_rows
    from runtime.shortlist import Shortlist
    from runtime.vocab import SPECIAL_IDS
    from tests.conftest import PY, ROOT, run_env
    from trainer.shortlist import training_pairs

    shutil.copy(tiny_att_run / "checkpoint.pth", tmp_path / "checkpoint.pth")
    t = Translator(tiny_att_onnx, device="cpu", shortlist=False)
    v = t.config.tgt_vocab_size
    r = subprocess.run([PY, "-m", "trainer", "shortlist", str(tmp_path / "checkpoint.pth"), "--from-model", "--frequent",
                        "0", "--per-source", str(v), "--cache-dir", str(tiny_att_run / "cache")],
                       capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 0 and "counted over the model's own output" in r.stdout, r.stderr
    ckpt = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert ckpt["shortlist"]["sizes"] == {"frequent": 0, "per_source": v, "from_model": True}
    shortlist = Shortlist(ckpt["shortlist"]["frequent"].numpy(), ckpt["shortlist"]["by_source"].numpy(), v)
    train = training_pairs(ckpt, str(tiny_att_run / "cache"))
    sources = train.side_ids("src", np.arange(len(train)))
    rows = dict(enumerate(train.source_rows(np.arange(len(train)))))
    out = decode_rows(t.encoder, t.decoder, rows, t.config.decoding)
    written_with = {}  # source id -> every target id the model wrote for a sentence holding it
    for k, row in rows.items():
        ids = out[k][0][0]
        assert set(ids) <= set(shortlist.candidates(np.array([row])).tolist()), k
        for s in sources[k].tolist():
            written_with.setdefault(s, set()).update(ids)
    # and nothing else: each source id's list is exactly what the model wrote beside it (lists
    # counted over the training targets hold the references' words too)
    for s, ids in written_with.items():
        listed = set(shortlist.by_source[s][shortlist.by_source[s] >= 0].tolist())
        assert listed == {i for i in ids if i >= len(SPECIAL_IDS)}, s
    assert sum(map(len, written_with.values())) > len(written_with)  # the model wrote something


def test_fit_ends_with_a_fixed_list_of_what_the_model_writes(tiny_att_run, tiny_att_onnx, tmp_path, monkeypatch):
    """Once training is done, `trainer fit` replaces the checkpoint's shortlist with the default kind:
    the N target ids the trained model writes most often on its training sources (here N = 10; the
    tiny model writes fewer, and ids it never writes are not listed), no per-source lists. A vocabulary the list would hold whole (the tiny model's, with the default N)
    keeps its checkpoint untouched: no decoding for nothing."""
    import shutil
    from collections import Counter

    import torch

    import trainer.train
    from runtime import Translator
    from runtime.decode import decode_rows
    from trainer.shortlist import ShortlistConfig, training_pairs
    from trainer.train import _model_shortlist

    shutil.copy(tiny_att_run / "checkpoint.pth", tmp_path / "checkpoint.pth")
    before = (tmp_path / "checkpoint.pth").read_bytes()
    _model_shortlist(tmp_path / "checkpoint.pth", print)
    assert (tmp_path / "checkpoint.pth").read_bytes() == before  # 5,116 ids hold the tiny vocabulary
    logs = []
    monkeypatch.setattr(trainer.train, "ShortlistConfig", lambda: ShortlistConfig(frequent=10))
    _model_shortlist(tmp_path / "checkpoint.pth", logs.append)
    assert len(logs) == 1 and "the 10 target pieces the model writes most often" in logs[0]
    ckpt = torch.load(tmp_path / "checkpoint.pth", weights_only=True)
    assert ckpt["shortlist"]["sizes"] == {"frequent": 10, "per_source": 0, "from_model": True}
    assert ckpt["shortlist"]["by_source"].shape == (len(ckpt["src_vocab"]), 0)
    t = Translator(tiny_att_onnx, device="cpu", shortlist=False)
    train = training_pairs(ckpt)
    out = decode_rows(t.encoder, t.decoder, dict(enumerate(train.source_rows(np.arange(len(train))))), t.config.decoding)
    written = Counter(i for hyps in out.values() for i in hyps[0][0] if i >= 4)
    listed = set(ckpt["shortlist"]["frequent"].tolist())
    assert len(listed) == min(10, len(written)) and listed <= set(written)  # never-written ids are left out
    monkeypatch.setattr(trainer.train, "ShortlistConfig", lambda: ShortlistConfig(frequent=2))
    _model_shortlist(tmp_path / "checkpoint.pth", logs.append)
    listed = set(torch.load(tmp_path / "checkpoint.pth", weights_only=True)["shortlist"]["frequent"].tolist())
    assert len(written) > 2 and len(listed) == 2  # the two written most often
    assert min(written[i] for i in listed) >= max(n for i, n in written.items() if i not in listed)


def test_fit_then_export_gives_the_fixed_shortlist_by_default(tmp_path, monkeypatch):
    """`trainer fit` ends by counting what the model writes (here a list of 3 ids, the tiny
    vocabulary being smaller than the default list), and `export onnx` with no shortlist option
    adds that list: the folder's decoder scores 3 ids and the specials; with --no-shortlist none."""
    import subprocess

    import torch

    import trainer.train
    from runtime import Translator
    from tests.conftest import PY, ROOT, TINY_ATT, run_env
    from trainer.shortlist import ShortlistConfig
    from trainer.train import TrainConfig, fit

    monkeypatch.setattr(trainer.train, "ShortlistConfig", lambda: ShortlistConfig(frequent=3))
    fit(TrainConfig.from_flat(**dict(TINY_ATT, epochs=1), out=str(tmp_path / "run")))
    sizes = torch.load(tmp_path / "run" / "checkpoint.pth", weights_only=True)["shortlist"]["sizes"]
    assert sizes == {"frequent": 3, "per_source": 0, "from_model": True}
    for flag, listed in (([], True), (["--no-shortlist"], False)):
        out = tmp_path / f"onnx{len(flag)}"
        r = subprocess.run([PY, "-m", "export", "onnx", str(tmp_path / "run" / "checkpoint.pth"), "--out", str(out),
                            *flag], capture_output=True, text=True, env=run_env(), cwd=ROOT)
        assert r.returncode == 0, r.stderr
        t = Translator(out)
        assert (t.config.shortlist == {"frequent": 3, "per_source": 0}) == listed
        assert (out / "decoder_shortlist.onnx").exists() == listed
        if listed:
            state = t.encoder(np.array([[2, 5, 3]]), np.array([3]))
            assert t.decoder.step(np.array([2]), state, want_log_probs=True)[1].shape[1] <= 3 + 4
