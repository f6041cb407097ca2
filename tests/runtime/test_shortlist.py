"""Shortlists: the candidates of a batch, exactness with the whole vocabulary, beam search over a
restricted vocabulary, the choice per batch between a format 5 folder's two decoders, the folder
checks; and older folders: format 4 shortlist folders (one decoder, taking the rows) and format 3
ones (no shortlist)."""
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from runtime import Translator
from runtime.model_format import ModelFolderError
from runtime.shortlist import Shortlist, ShortlistError, to_bytes

SENTENCES = ["the cat is black.", "she is tired", "where is the station?", "we will see.", "hello", "i like tea."]


def test_candidates_are_the_union_over_the_batch_sorted():
    by_source = np.full((8, 2), -1, dtype=np.int32)
    by_source[5] = [30, 31]
    by_source[6] = [31, 40]
    by_source[0] = [-1, -1]  # <pad>: nothing of its own
    sl = Shortlist(np.array([7, 9], dtype=np.int32), by_source, 50)
    assert sl.candidates(np.array([[2, 5, 3]])).tolist() == [0, 1, 2, 3, 7, 9, 30, 31]
    # a batch: both sentences' ids, each once, sorted (ties in the step's ArgMax go to the smaller id)
    assert sl.candidates(np.array([[2, 5, 3], [2, 6, 0]])).tolist() == [0, 1, 2, 3, 7, 9, 30, 31, 40]
    assert sl.candidates(np.array([[2, 3]])).tolist() == [0, 1, 2, 3, 7, 9]


def test_shortlist_file_is_checked():
    good = to_bytes(np.array([5]), np.zeros((4, 2)))
    assert Shortlist.from_bytes(good, 4, 10).candidates(np.array([[0]])).tolist() == [0, 1, 2, 3, 5]
    for data, why in ((b"not a zip", "not a shortlist"),
                      (to_bytes(np.array([5]), np.zeros((3, 2))), "expected (N,) and (4, k)"),
                      (to_bytes(np.array([10]), np.zeros((4, 2))), "outside the vocabulary"),
                      (to_bytes(np.array([5]), np.full((4, 2), -2)), "outside the vocabulary")):
        with pytest.raises(ShortlistError, match=re.escape(why)):
            Shortlist.from_bytes(data, 4, 10)  # noqa: B018


def _with_shortlist(folder, out, frequent, by_source):
    """A copy of a shortlist folder with another shortlist.npz, hashed into its config.json."""
    import hashlib

    shutil.copytree(folder, out)
    (out / "shortlist.npz").write_bytes(to_bytes(frequent, by_source))
    config = json.loads((out / "config.json").read_text())
    config["files"]["shortlist.npz"] = hashlib.sha256((out / "shortlist.npz").read_bytes()).hexdigest()
    (out / "config.json").write_text(json.dumps(config))
    return out


def _rows_always(translator: Translator) -> Translator:
    """Every batch through the decoder that takes the rows, whatever their number (as a format 4
    folder does): the choice per batch would send a whole vocabulary's rows to decoder.onnx."""
    translator.encoder.output_layer.whole_decoder = False
    return translator


def _same_output(got: Translator, want: Translator) -> None:
    """The same translations, n-best lists and scores (greedy and beam)."""
    assert got.translate(SENTENCES) == want.translate(SENTENCES)
    got = got.translate(SENTENCES, beam_size=4, n_best=3, return_scores=True)
    want = want.translate(SENTENCES, beam_size=4, n_best=3, return_scores=True)
    assert [[h.text for h in s] for s in got] == [[h.text for h in s] for s in want]
    assert np.allclose([h.score for s in got for h in s], [h.score for s in want for h in s], atol=1e-5)


def test_a_shortlist_of_the_whole_vocabulary_is_exact(tiny_att_onnx, tiny_att_onnx_sl, tmp_path):
    """A shortlist holding every target id, multiplied as rows by decoder_shortlist.onnx: the same
    translations, n-best lists and scores as the folder without one; and a shortlist folder with
    shortlist=False (--no-shortlist), and one whose batches pick decoder.onnx, likewise."""
    plain = Translator(tiny_att_onnx)
    v, vs = plain.config.tgt_vocab_size, plain.config.src_vocab_size
    folder = _with_shortlist(tiny_att_onnx_sl, tmp_path / "all", np.arange(v), np.zeros((vs, 0)))
    short = _rows_always(Translator(folder))
    assert short.shortlist is not None and short.config.shortlist == {"frequent": 1000, "per_source": 100}
    src = np.array([short.encode(SENTENCES[0])[0]])
    assert short.encoder(src, np.array([src.shape[1]]))["candidates"].tolist() == list(range(v))
    _same_output(short, plain)
    off = Translator(tiny_att_onnx_sl, shortlist=False)
    assert off.encoder.output_layer is None and not hasattr(off.decoder, "rows")  # decoder.onnx alone
    _same_output(off, plain)
    _same_output(Translator(folder), plain)  # all rows: more than pay, so decoder.onnx


def test_each_batch_takes_the_decoder_its_candidates_pay_for(tiny_att_onnx, tiny_att_onnx_sl, tmp_path):
    """A format 5 folder multiplies a batch by its rows while they are few (runtime.shortlist.rows_pay)
    and by decoder.onnx's whole projection when they are not: one sentence's candidates under half
    the vocabulary go as rows, over it not; translations with the whole projection are the plain
    folder's exactly."""
    from runtime.shortlist import rows_pay

    assert rows_pay(50, 1, 100, int8=False) and not rows_pay(51, 1, 100, int8=False)
    assert rows_pay(50, 1, 100, int8=True) and rows_pay(37, 8, 100, int8=True) and not rows_pay(38, 8, 100, int8=True)
    assert rows_pay(50, 32, 100, int8=False) and not rows_pay(51, 32, 100, int8=False)
    plain = Translator(tiny_att_onnx)
    v, vs = plain.config.tgt_vocab_size, plain.config.src_vocab_size
    one = np.array([plain.encode(SENTENCES[0])[0]])
    few = Translator(_with_shortlist(tiny_att_onnx_sl, tmp_path / "few", np.arange(4, v * 4 // 10), np.zeros((vs, 0))))
    state = few.encoder(one, np.array([one.shape[1]]))
    assert state["candidates"].tolist() == list(range(v * 4 // 10))
    _, log_probs, _ = few.decoder.step(np.array([2]), state, want_log_probs=True)
    assert log_probs.shape == (1, v * 4 // 10)  # decoder_shortlist.onnx, over the rows
    many = Translator(_with_shortlist(tiny_att_onnx_sl, tmp_path / "many", np.arange(4, v * 6 // 10), np.zeros((vs, 0))))
    state = many.encoder(one, np.array([one.shape[1]]))
    assert "candidates" not in state
    _, log_probs, _ = many.decoder.step(np.array([2]), state, want_log_probs=True)
    assert log_probs.shape == (1, v)  # decoder.onnx
    _same_output(many, plain)
    # one gather per batch: no pool of its own, whose workers would spin beside the decoder's
    from runtime.sessions import shared_pool_threads

    if shared_pool_threads() is None:
        assert many.encoder.output_layer.session.get_session_options().intra_op_num_threads == 1


@pytest.fixture(scope="module")
def v4_shortlist_folder(tiny_att_onnx_sl, tmp_path_factory):
    from tests.runtime.old_formats import write_format_4

    return write_format_4(tiny_att_onnx_sl, tmp_path_factory.mktemp("v4") / "model")


def test_format_4_shortlist_folder_translates_as_before(v4_shortlist_folder, tiny_att_onnx_sl, tmp_path):
    """A format 4 shortlist folder, whose only decoder takes the rows: every batch goes through it
    (with --no-shortlist, the whole vocabulary's rows), as today's folder does when it takes the rows."""
    import onnx

    assert "out_weight" in [i.name for i in onnx.load(str(v4_shortlist_folder / "decoder.onnx")).graph.input]
    old = Translator(v4_shortlist_folder)
    assert old.config.format_version == 4 and not hasattr(old.decoder, "rows")
    _same_output(old, _rows_always(Translator(tiny_att_onnx_sl)))
    off = Translator(v4_shortlist_folder, shortlist=False)
    src = np.array([off.encode(SENTENCES[0])[0]])
    assert len(off.encoder(src, np.array([src.shape[1]]))["candidates"]) == off.config.tgt_vocab_size
    _same_output(off, Translator(tiny_att_onnx_sl, shortlist=False))


@pytest.fixture(scope="module")
def small_shortlist(tiny_att_run, tiny_att_onnx, tmp_path_factory):
    """`trainer shortlist` with small sizes into a copy of the checkpoint, then `export onnx --shortlist`."""
    d = tmp_path_factory.mktemp("small_sl")
    shutil.copy(tiny_att_run / "checkpoint.pth", d / "checkpoint.pth")
    cache = tiny_att_run / "cache"
    r = subprocess.run([sys.executable, "-m", "trainer", "shortlist", str(d / "checkpoint.pth"), "--frequent", "20",
                        "--per-source", "5", "--cache-dir", str(cache)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "shortlist of 20 frequent + 5 per source id" in r.stdout
    r = subprocess.run([sys.executable, "-m", "export", "onnx", str(d / "checkpoint.pth"), "--out", str(d / "onnx"),
                        "--shortlist"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d / "onnx"


def test_a_small_shortlist_restricts_each_step_to_its_candidates(small_shortlist, tiny_att_onnx):
    """Greedy emits only candidates of its batch; one step's log-probs are the whole vocabulary's
    renormalized over the candidates (the softmax over the shortlist); beam 1 with scores = greedy."""
    from runtime.decode import pad_batch

    short, full = Translator(small_shortlist), Translator(tiny_att_onnx)
    assert short.config.shortlist == {"frequent": 20, "per_source": 5}
    for text in SENTENCES:
        ids = short.encode(text)[0]
        cand = set(short.shortlist.candidates(np.array([ids])).tolist())
        assert len(cand) < short.config.tgt_vocab_size
        out = short.translate(text)
        assert set(short.tgt_vocab.ids(short.tokenizer.tokenize(out, "tgt"))) <= cand | {1}
    src, lengths = pad_batch([short.encode(t)[0] for t in SENTENCES])
    prev = np.full(len(SENTENCES), 2, dtype=np.int64)
    s_state, f_state = short.encoder(src, lengths), full.encoder(src, lengths)
    s_next, s_lp, _ = short.decoder.step(prev, s_state, want_log_probs=True)
    _, f_lp, _ = full.decoder.step(prev, f_state, want_log_probs=True)
    cols = s_state["candidates"]
    assert s_lp.shape == (len(SENTENCES), len(cols)) and cols.tolist() == sorted(cols.tolist())
    renormalized = f_lp[:, cols] - np.log(np.exp(f_lp[:, cols]).sum(-1, keepdims=True))
    assert np.abs(s_lp - renormalized).max() < 1e-4
    assert (s_next == cols[renormalized.argmax(-1)]).all()
    scored = short.translate(SENTENCES, beam_size=1, return_scores=True)
    assert [s[0].text for s in scored] == short.translate(SENTENCES)
    nbest = short.translate(SENTENCES, beam_size=4, n_best=4, return_scores=True)
    assert all(len(s) == 4 and [h.score for h in s] == sorted((h.score for h in s), reverse=True) for s in nbest)


def test_export_shortlist_needs_one_in_the_checkpoint(tiny_att_run, tmp_path):
    import torch

    ckpt = torch.load(tiny_att_run / "checkpoint.pth", weights_only=True)
    assert ckpt["shortlist"]["by_source"].shape[0] == len(ckpt["src_vocab"])  # trainer fit built one
    del ckpt["shortlist"]
    torch.save(ckpt, tmp_path / "old.pth")
    r = subprocess.run([sys.executable, "-m", "export", "onnx", str(tmp_path / "old.pth"), "--out", str(tmp_path / "o"),
                        "--shortlist"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "has no shortlist" in r.stderr
    assert "trainer shortlist" in r.stderr and not (tmp_path / "o").exists()


def test_a_folder_naming_a_shortlist_it_lacks_is_refused(tiny_att_onnx_sl, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_att_onnx_sl, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["files"]["shortlist.npz"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="lists no checksum for shortlist.npz"):
        Translator(folder)


@pytest.fixture(scope="module")
def v3_folder(tiny_att_run, tiny_att_onnx, tmp_path_factory):
    from tests.runtime.old_formats import write_format_3

    return write_format_3(tiny_att_run / "checkpoint.pth", tiny_att_onnx, tmp_path_factory.mktemp("v3") / "model")


def test_format_3_attention_folder_translates_as_before(v3_folder, tiny_att_onnx):
    """A folder from before keys and shortlists (the decoder applies W_a to its query, masks from the
    lengths and projects onto the whole vocabulary) loads and gives the same translations and scores."""
    import onnx

    assert "src_lengths" in [i.name for i in onnx.load(str(v3_folder / "decoder.onnx")).graph.input]
    old, now = Translator(v3_folder), Translator(tiny_att_onnx)
    assert old.config.format_version == 3 and old.encoder.output_layer is None
    assert old.translate(SENTENCES) == now.translate(SENTENCES)
    got = old.translate(SENTENCES, beam_size=3, n_best=2, return_scores=True)
    want = now.translate(SENTENCES, beam_size=3, n_best=2, return_scores=True)
    assert [[h.text for h in s] for s in got] == [[h.text for h in s] for s in want]
    assert np.allclose([h.score for s in got for h in s], [h.score for s in want for h in s], atol=1e-4)


def test_an_int8_shortlist_multiplies_by_decoder_onnx_own_int8_rows(tiny_att_run, tiny_att_onnx, tmp_path):
    """int8 with a shortlist: the output layer holds decoder.onnx's own int8 projection (its int8
    values; the bias fp32), hands the rows over as stored, and decoder_shortlist.onnx multiplies by
    them with DynamicQuantizeMatMul, so a batch given every row scores as decoder.onnx does (a scale
    or bias of its own would move the scores by far more than 1e-4) and translates the same; with
    fewer rows, a step's probabilities are the whole vocabulary's renormalized, within int8's
    rounding."""
    import onnx
    from onnx import numpy_helper

    from export.folder import export_onnx
    from runtime.decode import pad_batch

    from trainer.shortlist import ShortlistConfig, add_shortlist

    folder = tmp_path / "int8sl"
    shutil.copy(tiny_att_run / "checkpoint.pth", tmp_path / "checkpoint.pth")  # per-source lists: rows as inputs
    add_shortlist(tmp_path / "checkpoint.pth", ShortlistConfig(1000, 100, from_model=False), str(tiny_att_run / "cache"))
    export_onnx(tmp_path / "checkpoint.pth", folder, quantize="int8", shortlist=True)
    layer = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(folder / "output_layer.onnx")).graph.initializer}
    whole = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(folder / "decoder.onnx")).graph.initializer}
    assert layer["out.weight"].dtype == np.int8 and layer["out.bias"].dtype == np.float32
    assert np.array_equal(layer["out.weight"].T, whole["out.weight_t_quantized"])
    assert np.array_equal(layer["out.bias"], whole["out.bias"])
    assert "DynamicQuantizeMatMul" in {n.op_type for n in onnx.load(str(folder / "decoder_shortlist.onnx")).graph.node}
    v = Translator(folder, shortlist=False).config.tgt_vocab_size
    every = _with_shortlist(folder, tmp_path / "every", np.arange(v), np.zeros((Translator(folder).config.src_vocab_size, 0)))
    rows, plain = _rows_always(Translator(every)), Translator(folder, shortlist=False)
    src, lengths = pad_batch([plain.encode(t)[0] for t in SENTENCES])
    prev = np.full(len(SENTENCES), 2, dtype=np.int64)
    r_state = rows.encoder(src, lengths)
    assert r_state["out_weight"].dtype == np.int8 and len(r_state["candidates"]) == plain.config.tgt_vocab_size
    r_next, r_lp, _ = rows.decoder.step(prev, r_state, want_log_probs=True)
    p_next, p_lp, _ = plain.decoder.step(prev, plain.encoder(src, lengths), want_log_probs=True)
    assert np.abs(r_lp - p_lp).max() < 1e-4 and (r_next == p_next).all()
    assert rows.translate(SENTENCES) == plain.translate(SENTENCES)
    few = _with_shortlist(folder, tmp_path / "few", np.arange(4, 40), np.zeros((plain.config.src_vocab_size, 0)))
    f_state = Translator(few).encoder(src, lengths)
    _, f_lp, _ = Translator(few).decoder.step(prev, f_state, want_log_probs=True)
    cols = f_state["candidates"]
    renormalized = p_lp[:, cols] - np.log(np.exp(p_lp[:, cols]).sum(-1, keepdims=True))
    assert np.abs(np.exp(f_lp) - np.exp(renormalized)).max() < 0.03


def _fixed_folder(run, out, frequent, quantize=None):
    """A copy of the run's checkpoint with a fixed shortlist (these frequent ids, no per-source
    lists), exported with it: decoder_shortlist.onnx holds their rows."""
    import torch

    from export.folder import export_onnx

    ckpt = torch.load(run / "checkpoint.pth", weights_only=True)
    ckpt["shortlist"] = {"frequent": torch.tensor(frequent, dtype=torch.int32),
                         "by_source": torch.zeros((len(ckpt["src_vocab"]), 0), dtype=torch.int32),
                         "sizes": {"frequent": len(frequent), "per_source": 0, "from_model": False}}
    out.mkdir()
    torch.save(ckpt, out / "checkpoint.pth")
    export_onnx(out / "checkpoint.pth", out / "onnx", quantize=quantize, shortlist=True)
    return out / "onnx"


def test_a_fixed_shortlist_of_the_whole_vocabulary_is_exact(tiny_att_run, tiny_att_onnx, tmp_path):
    """Format 7: a shortlist without per-source lists is the same for every batch, so
    decoder_shortlist.onnx holds its rows (no output_layer.onnx, no rows as inputs). Holding every
    target id, it translates exactly as the folder without one: texts, n-best lists, scores."""
    import onnx

    plain = Translator(tiny_att_onnx)
    v = plain.config.tgt_vocab_size
    folder = _fixed_folder(tiny_att_run, tmp_path / "all", np.arange(4, v))
    fixed = Translator(folder)
    assert fixed.config.format_version == 8 and fixed.config.shortlist == {"frequent": v - 4, "per_source": 0}
    assert not (folder / "output_layer.onnx").exists()
    assert "out_weight" not in {i.name for i in onnx.load(str(folder / "decoder_shortlist.onnx")).graph.input}
    src = np.array([fixed.encode(SENTENCES[0])[0]])
    assert fixed.encoder(src, np.array([src.shape[1]]))["candidates"].tolist() == list(range(v))
    from runtime.sessions import ShortlistDecoders

    assert not isinstance(fixed.decoder, ShortlistDecoders)  # decoder_shortlist.onnx alone: decoder.onnx unused
    _same_output(fixed, plain)


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_a_fixed_shortlist_restricts_every_batch_to_its_rows(tiny_att_run, tiny_att_onnx, tiny_att_onnx_int8, quantize,
                                                             tmp_path):
    """A fixed list of 40% of the vocabulary: every batch, one sentence or many, steps through
    decoder_shortlist.onnx; its log-probs are decoder.onnx's renormalized over the list (an int8
    folder's rows are decoder.onnx's own int8 columns, so within float rounding there too), its ids
    the best candidates'; greedy writes only listed ids; beam search maps columns to ids and keeps
    its n-best sorted; --no-shortlist (shortlist=False) is the plain folder exactly."""
    from runtime.decode import pad_batch

    plain = Translator(tiny_att_onnx_int8 if quantize else tiny_att_onnx)
    v = plain.config.tgt_vocab_size
    folder = _fixed_folder(tiny_att_run, tmp_path / "few", np.arange(4, v * 4 // 10), quantize)
    fixed = Translator(folder)
    listed = np.arange(v * 4 // 10)
    for texts in (SENTENCES[:1], SENTENCES):
        src, lengths = pad_batch([fixed.encode(t)[0] for t in texts])
        prev = np.full(len(texts), 2, dtype=np.int64)
        f_state, p_state = fixed.encoder(src, lengths), plain.encoder(src, lengths)
        assert f_state["candidates"].tolist() == listed.tolist()
        f_next, f_lp, _ = fixed.decoder.step(prev, f_state, want_log_probs=True)
        _, p_lp, _ = plain.decoder.step(prev, p_state, want_log_probs=True)
        assert f_lp.shape == (len(texts), len(listed))
        renormalized = p_lp[:, listed] - np.log(np.exp(p_lp[:, listed]).sum(-1, keepdims=True))
        assert np.abs(f_lp - renormalized).max() < 1e-4
        assert (f_next == listed[f_lp.argmax(-1)]).all()
    for text in SENTENCES:
        out = fixed.translate(text)
        assert set(fixed.tgt_vocab.ids(fixed.tokenizer.tokenize(out, "tgt"))) <= set(listed.tolist()) | {1}
    nbest = fixed.translate(SENTENCES, beam_size=4, n_best=4, return_scores=True)
    assert all(len(s) == 4 and [h.score for h in s] == sorted((h.score for h in s), reverse=True) for s in nbest)
    assert [s[0].text for s in fixed.translate(SENTENCES, beam_size=1, return_scores=True)] == fixed.translate(SENTENCES)
    _same_output(Translator(folder, shortlist=False), plain)


def test_a_fixed_shortlist_folder_takes_its_candidates_from_its_decoder(tiny_att_run, tmp_path):
    """decoder_shortlist.onnx maps its columns to the ids it was cut for. From format 8 the runtime
    takes them from that graph's own constant (shortlist.candidates, in its weights file) and does not
    read shortlist.npz: another list there (hashed into config.json) changes nothing, and a constant
    that is no sorted list of target ids is refused at load, in one line. A format 7 folder took
    them from shortlist.npz, so one of other ids is refused there, at the first run."""
    import hashlib

    from runtime.weights import read_header
    from tests.runtime.old_formats import write_format_7

    folder = _fixed_folder(tiny_att_run, tmp_path / "few", np.arange(4, 40))
    vs = Translator(folder).config.src_vocab_size
    other = _with_shortlist(folder, tmp_path / "other", np.arange(10, 46), np.zeros((vs, 0)))
    assert Translator(other).translate(SENTENCES) == Translator(folder).translate(SENTENCES)

    unsorted = tmp_path / "unsorted"
    shutil.copytree(folder, unsorted)
    weights = unsorted / "decoder_shortlist.safetensors"
    data = bytearray(weights.read_bytes())
    start, header = read_header(bytes(data))
    begin, end = (start + o for o in header["shortlist.candidates"]["data_offsets"])
    data[begin:end] = np.frombuffer(bytes(data[begin:end]), dtype=np.int64)[::-1].tobytes()
    weights.write_bytes(bytes(data))
    config = json.loads((unsorted / "config.json").read_text())
    config["files"][weights.name] = hashlib.sha256(bytes(data)).hexdigest()
    (unsorted / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="no shortlist.candidates of sorted target ids") as e:
        Translator(unsorted)
    assert "\n" not in str(e.value)

    other7 = _with_shortlist(write_format_7(folder, tmp_path / "v7"), tmp_path / "other7", np.arange(10, 46),
                             np.zeros((vs, 0)))
    with pytest.raises(ModelFolderError, match="not the candidates of shortlist.npz"):
        Translator(other7)
    Translator(other7, shortlist=False)  # the whole vocabulary's decoder does not read it


def test_export_adds_the_shortlist_trainer_fit_builds_unasked():
    """`export onnx` with neither --shortlist nor --no-shortlist adds a checkpoint's shortlist when it is
    the kind `trainer fit` builds (fixed, counted over the model's output) and leaves ids out; not
    per-source lists, not one counted over the targets, not one holding the whole vocabulary."""
    import torch

    from export.folder import default_shortlist

    def ckpt(frequent, per_source, from_model, vocab=100):
        return {"tgt_vocab": ["x"] * vocab, "shortlist": {
            "frequent": torch.tensor(frequent, dtype=torch.int32), "by_source": torch.zeros((5, per_source)),
            "sizes": {"frequent": len(frequent), "per_source": per_source, "from_model": from_model}}}

    assert default_shortlist(ckpt(range(4, 60), 0, True))
    assert not default_shortlist(ckpt(range(4, 60), 10, True))
    assert not default_shortlist(ckpt(range(4, 60), 0, False))
    assert not default_shortlist(ckpt(range(4, 100), 0, True))  # every id: nothing to skip
    assert not default_shortlist({"tgt_vocab": ["x"] * 100})  # a checkpoint from before shortlists


def test_format_6_folders_translate_as_before(tiny_att_onnx, tiny_att_onnx_sl, tiny_att_run, tmp_path):
    """Format 7 changed only what a shortlist without per-source lists means: a format 6 folder, with
    a shortlist (output_layer.onnx, rows as inputs) or without, translates as before; one such
    shortlist in a format 6 folder is still gathered per batch (the rows), and a fixed shortlist's
    folder labelled 6 (which no exporter wrote) is refused in one line, not misread."""
    from tests.runtime.old_formats import write_format_6

    v6 = {folder: write_format_6(folder, tmp_path / name) for folder, name in ((tiny_att_onnx, "plain"),
                                                                                 (tiny_att_onnx_sl, "rows"))}
    for folder, old in v6.items():
        assert Translator(old).config.format_version == 6
        _same_output(Translator(old), Translator(folder))
    vs = Translator(tiny_att_onnx).config.src_vocab_size
    no_lists = _with_shortlist(v6[tiny_att_onnx_sl], tmp_path / "no_lists", np.arange(4, 40), np.zeros((vs, 0)))
    config = json.loads((no_lists / "config.json").read_text())
    config["shortlist"]["per_source"] = 0  # as format 7 writes a fixed one: in format 6 it meant rows
    (no_lists / "config.json").write_text(json.dumps(config))
    rows = Translator(no_lists)
    src = np.array([rows.encode(SENTENCES[0])[0]])
    assert "out_weight" in rows.encoder(src, np.array([src.shape[1]]))  # rows per batch, as format 6 did
    fixed = _fixed_folder(tiny_att_run, tmp_path / "fixed", np.arange(4, 40))
    with pytest.raises(ModelFolderError) as e:
        Translator(write_format_6(fixed, tmp_path / "fixed6"))
    assert "output_layer.onnx" in str(e.value) and "\n" not in str(e.value)


def test_a_translator_reads_and_verifies_only_the_decoder_it_uses(tiny_att_run, tmp_path):
    """With a fixed shortlist on, decoder.onnx and its weights are --no-shortlist's only: neither read
    nor hashed (22 MB of an fp32 folder at every start), so a changed decoder.safetensors goes unread;
    off, the shortlist's files are not read. Whatever a Translator reads is verified: the same change
    to the file it uses is refused in one line."""
    folder = _fixed_folder(tiny_att_run, tmp_path / "fixed", np.arange(4, 40))
    for changed, refused_with in (("decoder.safetensors", False), ("decoder_shortlist.safetensors", True)):
        copy = tmp_path / changed
        shutil.copytree(folder, copy)
        data = bytearray((copy / changed).read_bytes())
        data[-1] ^= 1  # a weight's last byte
        (copy / changed).write_bytes(bytes(data))
        for shortlist in (True, False):
            if shortlist == refused_with:
                with pytest.raises(ModelFolderError, match=f"{changed}: sha256 does not match") as e:
                    Translator(copy, shortlist=shortlist)
                assert "\n" not in str(e.value)
            else:
                assert Translator(copy, shortlist=shortlist).translate(SENTENCES[:2])


def test_export_refuses_a_fixed_shortlist_decoder_that_scores_other_rows(tiny_att_run, tmp_path, monkeypatch):
    """The export checks the fixed shortlist's decoder against decoder.onnx (log-probs renormalized
    over the list) before it writes anything: one cut for the neighbouring ids is refused, and the
    folder is not written."""
    import export.step_graph
    from export.folder import ExportError

    cut = export.step_graph.fixed_shortlist_decoder
    monkeypatch.setattr(export.step_graph, "fixed_shortlist_decoder",
                        lambda decoder, candidates: cut(decoder, np.minimum(candidates + 1, candidates.max())))
    with pytest.raises(ExportError, match="verification failed, nothing written: the fixed shortlist's decoder"):
        _fixed_folder(tiny_att_run, tmp_path / "bad", np.arange(4, 40))
    assert not (tmp_path / "bad" / "onnx").exists()


def _test_sentences(n: int) -> list[str]:
    from trainer.builtin_corpus import pairs  # the tiny models' own kind of text

    return [src for src, _ in pairs("test")[:n]]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_a_batch_of_one_decodes_greedily_in_one_run(tiny_att_run, quantize, tmp_path):
    """Format 8: a fixed shortlist's decoder is its step inside a Loop. Greedy search of one sentence
    is one run of it (the encoder's, then one of the decoder), and writes exactly what stepping it
    one run at a time writes (the same kernels), caps (max_len) included; batches, beam search and
    scores step through it one run a step, as before."""
    folder = _fixed_folder(tiny_att_run, tmp_path / "few", np.arange(4, 40), quantize)
    loop, stepwise = Translator(folder), Translator(folder)
    assert loop.config.format_version == 8 and loop.decoder.multi_step
    stepwise.decoder.multi_step = False
    runs = []
    run = loop.decoder.run
    loop.decoder.run = lambda names, feeds: runs.append(names) or run(names, feeds)
    texts = SENTENCES + _test_sentences(60)
    for cap in (None, 3):
        runs.clear()
        got = [loop.translate(t, max_len=cap) for t in texts]
        assert len(runs) == len(texts)  # one decoder run a sentence
        assert got == [stepwise.translate(t, max_len=cap) for t in texts]
    assert all(len(loop.tokenizer.encode(t, "tgt", loop.tgt_vocab)) <= 3 for t in got)
    runs.clear()
    assert loop.translate(texts) == stepwise.translate(texts)  # batches: a run a step
    assert len(runs) > 2
    _same_output(loop, stepwise)


def test_format_7_folders_translate_as_before(tiny_att_run, tmp_path):
    """A format 7 folder's fixed shortlist decoder is one step: it loads, steps as it did, and
    translates as the format 8 folder of the same checkpoint does."""
    from tests.runtime.old_formats import write_format_7

    folder = _fixed_folder(tiny_att_run, tmp_path / "few", np.arange(4, 40))
    old = Translator(write_format_7(folder, tmp_path / "v7"))
    assert old.config.format_version == 7 and not old.decoder.multi_step
    _same_output(old, Translator(folder))
    texts = _test_sentences(40)
    assert [old.translate(t) for t in texts] == [Translator(folder).translate(t) for t in texts]


def test_export_refuses_a_loop_that_decodes_otherwise(tiny_att_run, tmp_path, monkeypatch):
    """The export checks that greedy search of a sentence in one run of the Loop writes what its steps
    one at a time write: a Loop that stops after its first step unless that wrote <eos> (each step
    alone still right) is refused, nothing written."""
    import export.step_graph
    from onnx import numpy_helper

    from export.folder import ExportError

    wrap = export.step_graph.multi_step_decoder

    def stops_early(step, eos_id):
        model = wrap(step, eos_id)
        zero = next(i for i in model.graph.initializer if i.name == "loop/zero")
        zero.CopyFrom(numpy_helper.from_array(np.array(1, dtype=np.int64), "loop/zero"))  # go on only after <eos>
        return model

    monkeypatch.setattr(export.step_graph, "multi_step_decoder", stops_early)
    with pytest.raises(ExportError, match="in one run than step by step"):
        _fixed_folder(tiny_att_run, tmp_path / "bad", np.arange(4, 40))
    assert not (tmp_path / "bad" / "onnx").exists()
