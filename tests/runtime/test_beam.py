import numpy as np
import pytest

from runtime import Translator
from runtime.sessions import DecoderSession, EncoderSession, make_session
from runtime.vocab import EOS_ID, SOS_ID
from trainer.data import load_corpus

SENTENCES = [s for s, _ in load_corpus("builtin:test").pairs[:100]]


@pytest.fixture(scope="module")
def translator(tiny_onnx):
    return Translator(tiny_onnx, device="cpu")


def test_beam_one_is_exactly_greedy_on_100_sentences(translator):
    assert len(SENTENCES) == 100
    beam_one = translator.translate(SENTENCES, beam_size=1, return_scores=True)  # runs runtime/beam.py
    assert [h[0].text for h in beam_one] == translator.translate(SENTENCES)  # runs runtime/decode.py


def _forced_score(model_dir, text, translator, hyp_ids):
    """log p(hyp + <eos> | text) by teacher-forcing the decoder graph."""
    enc = EncoderSession(make_session(model_dir / "encoder.onnx", "cpu", None), "cpu")
    dec = DecoderSession(make_session(model_dir / "decoder.onnx", "cpu", None), "cpu")
    ids, _ = translator.encode(text)
    state = enc(np.array([ids]), np.array([len(ids)]))
    prev, total = SOS_ID, 0.0
    for tok in hyp_ids + [EOS_ID]:
        _, lp, state = dec.step(np.array([prev]), state, want_log_probs=True)
        total += float(lp[0, tok])
        prev = tok
    return total


def test_beam_finds_higher_scoring_hypotheses_than_greedy(translator, tiny_onnx):
    greedy = translator.translate(SENTENCES, beam_size=1, return_scores=True)
    beam = translator.translate(SENTENCES, beam_size=5, return_scores=True)
    better = [i for i in range(len(SENTENCES)) if beam[i][0].score > greedy[i][0].score + 1e-6]
    assert better, "beam search never beat greedy"
    # the reported score is the hypothesis' real log-probability under the model
    i = better[0]
    hyp_ids = translator.tgt_vocab.ids(translator.tokenizer.tokenize(beam[i][0].text, "tgt"))
    assert _forced_score(tiny_onnx, SENTENCES[i], translator, hyp_ids) == pytest.approx(beam[i][0].score, abs=1e-3)


def test_n_best_sorted_and_distinct(translator):
    hyps = translator.translate(SENTENCES[:10], beam_size=4, n_best=4, return_scores=True)
    for h in hyps:
        assert len(h) == 4 and [x.score for x in h] == sorted((x.score for x in h), reverse=True)
        assert len({x.text for x in h}) == 4, [x.text for x in h]  # four different hypotheses, not one repeated


def test_length_penalty_normalises_by_length(translator, tiny_onnx):
    """At alpha the score is the hypothesis' own log-probability divided by length ** alpha,
    length = its tokens + <eos>; alpha 0 is the plain log-probability."""
    checked = 0
    for alpha in (0.0, 1.0, 0.6):
        for text, hyps in zip(SENTENCES[:6], translator.translate(SENTENCES[:6], beam_size=3, n_best=3,
                                                                   length_penalty=alpha, return_scores=True)):
            for h in hyps:
                ids = translator.tgt_vocab.ids(translator.tokenizer.tokenize(h.text, "tgt"))
                if not h.text or len(ids) + 1 >= 2 * len(translator.encode(text)[0]) + 10:
                    continue  # stopped by the length cap (no <eos> scored) or empty
                logp = _forced_score(tiny_onnx, text, translator, ids)
                assert h.score == pytest.approx(logp / (len(ids) + 1) ** alpha, abs=1e-3)
                checked += 1
    assert checked >= 10


def test_bad_beam_arguments(translator):
    for kwargs in (dict(beam_size=0), dict(beam_size=2, n_best=3), dict(beam_size=-1)):
        with pytest.raises(ValueError):
            translator.translate(["hello"], **kwargs)


def test_trainer_evaluate_beam_matches_runtime(translator, tiny_ckpt):
    from trainer.evaluate import torch_translate

    from tests.conftest import torch_model

    model, codec = torch_model(tiny_ckpt)
    texts = SENTENCES[:40]
    assert torch_translate(model, codec, texts, beam_size=3) == translator.translate(texts, beam_size=3)
