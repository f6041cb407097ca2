"""The attention model through export and the runtime: padding invariance of the graphs, one
decoding pipeline (PyTorch evaluate == runtime), beam 1 == greedy, int8 parity (IOBinding: test_translator)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from runtime import Translator
from runtime.model_format import FORMAT_VERSION, ModelFolderError
from runtime.sessions import DecoderSession, EncoderSession, make_session
from trainer.checkpoint import load_checkpoint, model_from_checkpoint
from trainer.data import load_corpus
from trainer.evaluate import torch_translate
from tests.conftest import torch_model

SENTENCES = [s for s, _ in load_corpus("builtin:test").pairs[:40]] + ["Hello.", "Thank you!", "The cat is black."]
# source rows of different lengths: row 0 is padded inside the batch
ROWS = [[2, 5, 6, 3], [2] + list(range(4, 30)) + [3], [2, 9, 3], [2, 7, 8, 9, 10, 11, 3]]


def _sessions(folder):
    return (EncoderSession(make_session(folder / "encoder.onnx", "cpu", 1), "cpu"),
            DecoderSession(make_session(folder / "decoder.onnx", "cpu", 1), "cpu"))


def _batch(rows):
    from runtime.decode import pad_batch

    return pad_batch(rows)


def _run_steps(folder, rows, prev_steps):
    """-> log_probs per step (steps, B, V) for a fixed sequence of previous tokens."""
    enc, dec = _sessions(folder)
    state = enc(*_batch(rows))
    out = []
    for prev in prev_steps:
        _, log_probs, state = dec.step(np.full(len(rows), prev, dtype=np.int64), state, want_log_probs=True)
        out.append(log_probs)
    return np.stack(out)


def test_padding_invariance_of_the_attention_graphs(tiny_att_onnx):
    """A sentence's log-probs over several steps are the same alone and inside a padded batch of
    longer sentences (the padded memory positions are masked out of the attention). fp32 only:
    int8's dynamic quantization scales each activation by its batch's range, so an int8 result
    depends on its batch by design (the paper model's too)."""
    folder = tiny_att_onnx
    prevs = [2, 10, 11, 12, 13]
    batched = _run_steps(folder, ROWS, prevs)
    for i, row in enumerate(ROWS):
        alone = _run_steps(folder, [row], prevs)
        assert np.abs(alone[:, 0] - batched[:, i]).max() <= 1e-5, i


def test_attention_weights_ignore_padding(tiny_att_run):
    """The PyTorch model: each sentence's attention weights are zero on its padding and the same
    alone as in the padded batch (1e-5)."""
    model, *_ = model_from_checkpoint(load_checkpoint(tiny_att_run / "checkpoint.pth"))
    src, lengths = (torch.from_numpy(x) for x in _batch(ROWS))
    prev = torch.tensor([2] * len(ROWS))
    with torch.no_grad():
        weights = model.decoder.attention_weights(prev, model.encoder(src, lengths))  # (B, S)
        for i, row in enumerate(ROWS):
            alone = model.decoder.attention_weights(prev[:1], model.encoder(torch.tensor([row]), torch.tensor([len(row)])))
            assert torch.allclose(alone[0], weights[i, : len(row)], atol=1e-5)
            assert float(weights[i, len(row):].abs().sum()) == 0.0
            assert abs(float(weights[i].sum()) - 1) < 1e-5


@pytest.fixture(scope="module")
def att(tiny_att_onnx):
    return Translator(tiny_att_onnx, device="cpu")


def test_runtime_equals_pytorch_through_the_one_pipeline(att, tiny_att_run):
    """`trainer evaluate`'s decoding (PyTorch adapters) and the runtime give the same text, greedy and beam."""
    model, codec = torch_model(tiny_att_run / "checkpoint.pth")
    assert att.translate(SENTENCES, batch_size=16) == torch_translate(model, codec, SENTENCES, batch_size=16)
    assert att.translate(SENTENCES, batch_size=16, beam_size=4) == \
        torch_translate(model, codec, SENTENCES, batch_size=16, beam_size=4)


def test_beam_1_equals_greedy_and_batching_changes_nothing(att):
    greedy = att.translate(SENTENCES, batch_size=32)
    beam1 = att.translate(SENTENCES, batch_size=32, beam_size=1, return_scores=True)
    assert [h[0].text for h in beam1] == greedy
    assert att.translate(SENTENCES, batch_size=5) == greedy
    beam = att.translate(SENTENCES[:12], batch_size=12, beam_size=3, n_best=2, return_scores=True)
    one_by_one = [att.translate([s], beam_size=3, n_best=2, return_scores=True)[0] for s in SENTENCES[:12]]
    assert [[h.text for h in s] for s in beam] == [[h.text for h in s] for s in one_by_one]
    assert np.allclose([h.score for s in beam for h in s], [h.score for s in one_by_one for h in s], atol=1e-5)


def _forced_log_probs(folder, src, lengths, paths):
    """Each row stepped along the token path given (teacher forcing) -> log_probs (T, B, V)."""
    enc, dec = _sessions(folder)
    state, prev, out = enc(src, lengths), np.full(len(src), 2, dtype=np.int64), []
    for t in range(paths.shape[1]):
        _, log_probs, state = dec.step(prev, state, want_log_probs=True)
        out.append(log_probs)
        prev = paths[:, t]
    return np.stack(out)


def test_int8_attention_parity(tiny_att_onnx, tiny_att_onnx_int8):
    """int8 follows fp32 by what int8 rounding allows, on any x86 CPU.

    Why it holds on every CPU: all int8 weights fit 7 bits, so no u8 x s8 product pair overflows the
    int16 adds of CPUs without VNNI (2 x 255 x 64 < 2^15) and the integer arithmetic is exact
    everywhere (checked under QEMU as AVX2 and AVX-512-without-VNNI CPUs: the same numbers as with VNNI).
    The bounds, from the rounding: a logit is a sum of H = 32 products, each moved by at most half a
    weight step (7 bits: |W|max / 64) and half an activation step (8 bits over the range, ~2/255); as
    errors of random sign add up as sqrt(H), six standard deviations are ~0.044 for these sizes. Softmax
    moves a probability by at most p(1 - p) x 2 x that (<= 0.022), a log-probability by at most 2 x that
    (0.09); so wherever fp32's best token leads the next by more than 0.18, int8 picks it too.
    Attention's own products (scores, context) stay fp32; the embeddings' int8 rows (a scale per
    row, 8 bits) move an input by at most 1/254 of its row's largest value, less than a weight step."""
    from export.quantize import quantized_op_counts, wide_int8_weights
    from runtime.decode import greedy_search

    for graph in ("encoder.onnx", "decoder.onnx"):
        assert wide_int8_weights(tiny_att_onnx_int8 / graph) == []
    counts = quantized_op_counts(tiny_att_onnx_int8 / "decoder.onnx")
    assert counts["DynamicQuantizeLSTM"] == 2 and counts["MatMulInteger"] == 2  # linear_out, out
    assert quantized_op_counts(tiny_att_onnx_int8 / "encoder.onnx")["MatMulInteger"] == 1  # linear_in, on the keys
    prevs = [2, 10, 11, 12, 13]
    fp32, int8 = _run_steps(tiny_att_onnx, ROWS, prevs), _run_steps(tiny_att_onnx_int8, ROWS, prevs)
    assert np.abs(np.exp(fp32) - np.exp(int8)).max() < 0.022  # probabilities
    # real sentences, both graphs stepped along fp32's own greedy path
    translator = Translator(tiny_att_onnx)
    src, lengths = _batch([translator.encode(s)[0] for s in SENTENCES])
    paths = greedy_search(*_sessions(tiny_att_onnx), src, lengths, np.full(len(src), 20))
    forced = np.array([(p + [3] * 20)[:20] for p in paths])  # (B, 20), <eos> after the end
    fp32 = _forced_log_probs(tiny_att_onnx, src, lengths, forced)
    int8 = _forced_log_probs(tiny_att_onnx_int8, src, lengths, forced)
    live = np.arange(20)[:, None] <= np.array([len(p) for p in paths])[None, :]  # (T, B): up to each row's <eos>
    top2 = np.sort(fp32, axis=-1)[..., -2:]
    clear = live & (top2[..., 1] - top2[..., 0] > 0.18)
    assert clear.sum() >= 100  # enough steps to mean something
    assert (fp32.argmax(-1) == int8.argmax(-1))[clear].all()


def test_config_attention_must_match_the_graphs(tiny_onnx, tiny_att_onnx, tmp_path):
    """config.json's attention names the decoder the graphs are: a mismatch is a clear error."""
    import shutil

    for folder, wrong in ((tiny_onnx, "luong"), (tiny_att_onnx, "none")):
        d = tmp_path / wrong
        shutil.copytree(folder, d)
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "attention": wrong}))
        with pytest.raises(ModelFolderError, match="not the graph config.json describes"):
            Translator(d)
    info = json.loads((tiny_att_onnx / "config.json").read_text())
    assert info["attention"] == "luong" and info["format_version"] == FORMAT_VERSION
