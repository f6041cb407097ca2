"""SentencePiece subwords: tokenizer round trip, an open and cased vocabulary, the model folder's
SentencePiece files (missing, mismatched, corrupt), text the model never saw, and format 1 folders."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from runtime import Translator
from runtime.cli import cli
from runtime.model_format import FORMAT_VERSION, SOURCE_SPM_FILE, TARGET_SPM_FILE, load_config
from runtime.prepare import TextConfig
from runtime.tokenizer import SentencePieceTokenizer, Tokenizer, from_state
from runtime.vocab import UNK_ID
from tests.runtime.test_folder_integrity import _copy, _edit_json, _refused, _rehash



@pytest.fixture(scope="module")
def spm(tiny_spm_run) -> SentencePieceTokenizer:
    import torch

    return from_state(torch.load(tiny_spm_run / "checkpoint.pth", weights_only=True)["tokenizer"])


@pytest.fixture(scope="module")
def translator(tiny_spm_onnx) -> Translator:
    return Translator(tiny_spm_onnx)


def test_round_trip_keeps_case_punctuation_and_digits(spm):
    for text in ["The cat is black.", "Paul lives in Boston!", "I have 17 red cars?", "Est-ce qu'elle est prête ?"]:
        side = "tgt" if text.startswith("Est") else "src"
        pieces = spm.tokenize(text, side)
        assert spm.detokenize(pieces, side) == text
    # digits are single pieces (split_digits): any number can be copied piece by piece
    assert "".join(spm.tokenize("1729", "src")).strip("▁") == "1729"
    assert all(len(p.strip("▁")) <= 1 for p in spm.tokenize("1729", "src"))
    # case is kept: the pieces of "Boston" are not those of "boston"
    assert spm.tokenize("Boston", "src") != spm.tokenize("boston", "src")


def test_invented_word_is_split_into_known_pieces_never_unk(spm, tiny_spm_run):
    import torch

    from runtime.vocab import Vocab

    src_vocab = Vocab(torch.load(tiny_spm_run / "checkpoint.pth", weights_only=True)["src_vocab"])
    pieces = spm.tokenize("Zorblaxian", "src")
    assert len(pieces) > 1 and "".join(pieces).replace("▁", "") == "Zorblaxian"
    assert UNK_ID not in src_vocab.ids(pieces)
    # the word vocabulary, for contrast, has no such word
    assert Vocab(["<pad>", "<unk>", "<sos>", "<eos>", "the"]).ids(Tokenizer().tokenize("Zorblaxian")) == [UNK_ID]


def test_vocabulary_is_the_models_pieces_and_ids_agree(spm, tiny_spm_onnx):
    for side, name in (("src", "source_vocabulary.json"), ("tgt", "target_vocabulary.json")):
        vocab = json.loads((tiny_spm_onnx / name).read_text())
        assert vocab == spm.pieces(side) and vocab[:4] == ["<pad>", "<unk>", "<sos>", "<eos>"]
        sp = spm._sp[side]
        text = "The teachers will not be ready."
        assert [vocab.index(p) for p in spm.tokenize(text, side)] == sp.encode(text)  # piece id == vocabulary id


def test_folder_carries_hashed_models_and_its_text_settings(tiny_spm_onnx, spm):
    cfg = load_config(tiny_spm_onnx)
    assert cfg.format_version == FORMAT_VERSION and cfg.attention == "none"
    assert cfg.text == TextConfig("en", "fr", restore_case=True)
    assert {SOURCE_SPM_FILE, TARGET_SPM_FILE} <= set(cfg.files)
    assert (tiny_spm_onnx / SOURCE_SPM_FILE).read_bytes() == spm.source_model
    assert json.loads((tiny_spm_onnx / "tokenizer.json").read_text()) == {
        "type": "sentencepiece", "lowercase": False, "source_model": SOURCE_SPM_FILE, "target_model": TARGET_SPM_FILE}


def test_runtime_equals_pytorch_through_subwords(translator, tiny_spm_run):
    from tests.conftest import torch_model
    from trainer.evaluate import torch_translate

    model, codec = torch_model(tiny_spm_run / "checkpoint.pth")
    texts = ["The cat is black.", "she is tired", "Paul has 4 cars.", "Zorblaxian!", "Where is Tom?"]
    assert translator.translate(texts) == torch_translate(model, codec, texts)


def test_format_2_folder_loads_and_reads_text_as_typed(tiny_spm_onnx, tmp_path):
    """A folder from before "text" (format 2): languages unknown, input read as typed, as it was trained."""
    import dataclasses

    from tests.runtime.old_formats import write_format_5

    old = write_format_5(tiny_spm_onnx, tmp_path / "v2")  # weights inside the graphs, as until format 6
    config = json.loads((old / "config.json").read_text())
    del config["text"], config["shortlist"]  # the paper model's graphs are the same in formats 2 to 4
    (old / "config.json").write_text(json.dumps({**config, "format_version": 2}))
    t, now = Translator(old), Translator(tiny_spm_onnx)
    assert t.config.format_version == 2 and t.config.text == TextConfig()
    now.codec = dataclasses.replace(now.codec, text=TextConfig())
    texts = ["WHERE IS THE STATION?", "Where Is The Cat Now", "she is tired"]
    assert t.translate(texts) == now.translate(texts)


@pytest.mark.parametrize("text", ["🙂🙂", "Hello 🙂 Paul", "こんにちは世界", "Привет, Paul!", "tab\there", "a\x07b\x1bc",
                                  "\u200b\u200b", "x" * 3000])
def test_text_never_seen_translates_without_error(translator, text):
    out = translator.translate(text)
    assert isinstance(out, str) and "\x07" not in out
    r = CliRunner().invoke(cli, ["translate", "--model", str(translator.model_dir), text])
    assert r.exit_code == 0 and "Traceback" not in r.output


def test_only_control_characters_translate_to_empty(translator):
    # sentencepiece's normalization drops them: no token, so no translation; blank text comes back as it is
    assert translator.translate(["\x07\x1b", "", "  "]) == ["", "", "  "]
    ids, _ = translator.encode("\x07\x1b\x7f")
    assert ids is None


def test_unknown_characters_become_unk_in_the_source(translator):
    ids, _ = translator.encode("🙂")
    assert UNK_ID in ids  # defined: a character never seen in training is <unk>, nothing else breaks


# ---- a folder whose SentencePiece files are missing, mismatched or corrupt -------------------------

def test_missing_sentencepiece_model(tiny_spm_onnx, tmp_path):
    folder = _copy(tiny_spm_onnx, tmp_path)
    (folder / TARGET_SPM_FILE).unlink()
    _refused(folder, TARGET_SPM_FILE, "missing")


def test_sentencepiece_model_not_listed(tiny_spm_onnx, tmp_path):
    folder = _copy(tiny_spm_onnx, tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["files"][SOURCE_SPM_FILE]
    (folder / "config.json").write_text(json.dumps(cfg))
    _refused(folder, SOURCE_SPM_FILE, "not listed")


def test_swapped_sentencepiece_models_mismatch_their_vocabulary(tiny_spm_onnx, tmp_path):
    folder = _copy(tiny_spm_onnx, tmp_path)
    src, tgt = (folder / SOURCE_SPM_FILE).read_bytes(), (folder / TARGET_SPM_FILE).read_bytes()
    (folder / SOURCE_SPM_FILE).write_bytes(tgt)
    (folder / TARGET_SPM_FILE).write_bytes(src)
    _rehash(folder, SOURCE_SPM_FILE, TARGET_SPM_FILE)
    _refused(folder, "source_vocabulary.json", "mismatched")


def test_corrupt_sentencepiece_model(tiny_spm_onnx, tmp_path):
    folder = _copy(tiny_spm_onnx, tmp_path)
    (folder / SOURCE_SPM_FILE).write_bytes(b"\x0a\x05hello, not a model" * 10)
    _rehash(folder, SOURCE_SPM_FILE)
    _refused(folder, SOURCE_SPM_FILE, "corrupt")


def test_tampered_sentencepiece_model_fails_its_checksum(tiny_spm_onnx, tmp_path):
    folder = _copy(tiny_spm_onnx, tmp_path)
    data = bytearray((folder / TARGET_SPM_FILE).read_bytes())
    data[-1] ^= 1
    (folder / TARGET_SPM_FILE).write_bytes(bytes(data))
    _refused(folder, TARGET_SPM_FILE, "sha256")


@pytest.mark.parametrize("edit,words", [
    (lambda t: {**t, "type": "bpe"}, ["tokenizer.json", "'type'"]),
    (lambda t: {**t, "source_model": "../x.model"}, ["tokenizer.json", "'source_model'"]),
    (lambda t: {k: v for k, v in t.items() if k != "target_model"}, ["tokenizer.json", "'target_model'", "missing"]),
])
def test_tokenizer_json_of_a_sentencepiece_folder_is_checked(tiny_spm_onnx, tmp_path, edit, words):
    folder = _copy(tiny_spm_onnx, tmp_path)
    _edit_json(folder, "tokenizer.json", edit)
    _refused(folder, *words)


# ---- format 1 ----------------------------------------------------------------------------------------

V1_SENTENCES = ["hello", "thank you", "she is tired", "the cat is black", "i have three red cars", "we saw the dog ?",
                "My name is Paul.", "zorblaxian", "they will not be happy", "", "did the teacher find a green key ?"]


def _write_format_1(checkpoint, v2_folder, out):
    """The folder the format 1 exporter wrote for this checkpoint: the same encoder; a decoder that
    also returned the raw `logits`, first (its one-step wrapper, as format 1 had it); tokenizer.json
    without "type"; config.json without "attention", at format_version 1."""
    import hashlib
    import warnings

    import torch

    from export.graphs import set_metadata
    from runtime.state import DECODER_INPUTS, V1_DECODER_OUTPUTS
    from trainer.checkpoint import load_checkpoint, model_from_checkpoint

    class V1DecoderStep(torch.nn.Module):
        def __init__(self, decoder):
            super().__init__()
            self.decoder = decoder

        def forward(self, prev_ids, hidden, cell):
            logits, new = self.decoder.step(prev_ids, {"hidden": hidden, "cell": cell})
            return logits, torch.log_softmax(logits, dim=-1), new["hidden"], new["cell"], logits.argmax(-1)

    from tests.runtime.old_formats import write_format_5

    write_format_5(v2_folder, out)  # weights inside the graphs, as until format 6
    model = model_from_checkpoint(load_checkpoint(checkpoint))[0]
    cfg = model.cfg
    state = torch.zeros(cfg.layers, 3, cfg.hidden_dim)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(V1DecoderStep(model.decoder).eval(), (torch.tensor([2, 5, 9]), state, state.clone()),
                          str(out / "decoder.onnx"), dynamo=False, opset_version=17, input_names=list(DECODER_INPUTS),
                          output_names=list(V1_DECODER_OUTPUTS),
                          dynamic_axes={name: {0: "batch"} for name in ("prev_ids", "logits", "log_probs", "next_ids")}
                          | {name: {1: "batch"} for name in ("hidden", "cell", "new_hidden", "new_cell")})
    set_metadata(out / "decoder.onnx", {"format_version": "1", "producer": "seq2seq-edge"})
    tokenizer = json.loads((out / "tokenizer.json").read_text())
    (out / "tokenizer.json").write_text(json.dumps({k: v for k, v in tokenizer.items() if k != "type"}))
    config = json.loads((out / "config.json").read_text())
    del config["attention"], config["text"], config["shortlist"]
    config["format_version"] = 1
    config["files"] = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in config["files"]}
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def v1_folder(tiny_ckpt, tiny_onnx, tmp_path_factory):
    return _write_format_1(tiny_ckpt, tiny_onnx, tmp_path_factory.mktemp("v1") / "model")


def test_format_1_folder_loads_and_translates_as_before(v1_folder, tiny_onnx):
    """A word-vocabulary folder as format 1 wrote it (a decoder with `logits`) translates exactly as
    the same model's format 2 folder: greedy, beam with n-best and scores, and the IOBinding path."""
    import onnx

    assert [o.name for o in onnx.load(str(v1_folder / "decoder.onnx")).graph.output][0] == "logits"
    t, now = Translator(v1_folder), Translator(tiny_onnx)
    assert t.config.format_version == 1 and isinstance(t.tokenizer, Tokenizer) and t.tokenizer.lowercase
    greedy = now.translate(V1_SENTENCES)
    assert t.translate(V1_SENTENCES) == greedy and any(greedy)
    got = t.translate(V1_SENTENCES, beam_size=3, n_best=2, return_scores=True)
    for hyps, want in zip(got, now.translate(V1_SENTENCES, beam_size=3, n_best=2, return_scores=True)):
        assert [h.text for h in hyps] == [w.text for w in want]
        assert np.allclose([h.score for h in hyps], [w.score for w in want], atol=1e-5)
    # and through the IOBinding path (the one CUDA takes), which binds only the outputs it reads
    t.encoder.bind = t.decoder.bind = True
    assert t.translate(V1_SENTENCES) == greedy


def test_format_1_folder_with_a_format_2_field_is_refused(v1_folder, tmp_path):
    folder = _copy(v1_folder, tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "attention": "none"}))
    _refused(folder, "config.json", "'attention'")


def test_attention_this_runtime_does_not_know_says_upgrade(tiny_spm_onnx, tmp_path):
    folder = _copy(tiny_spm_onnx, tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "attention": "bahdanau"}))
    _refused(folder, "attention 'bahdanau'", "upgrade the runtime")
