"""Shared fixtures: one tiny model trained, exported (fp32 and int8) once per test session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
TATOEBA = SHARED_DATA / "tatoeba-fra"
MULTI30K = SHARED_DATA / "multi30k"

needs_shared = pytest.mark.skipif(not TATOEBA.is_dir(), reason="../shared/data (reference corpora) is not beside this clone")

# a model small enough to train in seconds; quality doesn't matter for parity tests. The
# word-vocabulary paper model serves the tests written before subwords; TINY_SPM the subword
# ones; TINY_ATT is the attention model.
TINY = dict(max_pairs=600, emb_dim=16, hidden_dim=32, layers=2, epochs=3, batch_size=32, batch_tokens=0, seed=1,
            lr=0.01, vocab="word", attention="none")
TINY_SPM = dict(TINY, vocab="sentencepiece", vocab_size=300)
TINY_ATT = dict(TINY_SPM, attention="luong")


def run_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


PY = sys.executable
# Debian's chromium, which Playwright drives (its own browser download can't run here); .ci/run installs it
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def torch_model(checkpoint):
    """A checkpoint's PyTorch model and its text codec (for trainer.evaluate.torch_translate)."""
    from trainer.checkpoint import codec_of, load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model, src_vocab, tgt_vocab, tokenizer = model_from_checkpoint(ckpt)
    return model, codec_of(ckpt, model, src_vocab, tgt_vocab, tokenizer)


def _train(tmp_path_factory, name: str, options: dict) -> Path:
    from trainer.train import TrainConfig, fit

    out = tmp_path_factory.mktemp(name)
    fit(TrainConfig.from_flat(**options, out=str(out)))
    return out


def _export(tmp_path_factory, name: str, checkpoint: Path, **kw) -> Path:
    from export.folder import export_onnx

    out = tmp_path_factory.mktemp(name) / "model"
    export_onnx(checkpoint, out, **kw)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "tiny", TINY)


@pytest.fixture(scope="session")
def tiny_ckpt(tiny_run) -> Path:
    return tiny_run / "checkpoint.pth"


@pytest.fixture(scope="session")
def tiny_onnx(tiny_ckpt, tmp_path_factory) -> Path:
    return _export(tmp_path_factory, "onnx", tiny_ckpt)


@pytest.fixture(scope="session")
def tiny_onnx_int8(tiny_ckpt, tmp_path_factory) -> Path:
    return _export(tmp_path_factory, "onnx8", tiny_ckpt, quantize="int8")


@pytest.fixture(scope="session")
def tiny_spm_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "tiny_spm", TINY_SPM)


@pytest.fixture(scope="session")
def tiny_spm_onnx(tiny_spm_run, tmp_path_factory) -> Path:
    return _export(tmp_path_factory, "onnx_spm", tiny_spm_run / "checkpoint.pth")


@pytest.fixture(scope="session")
def tiny_att_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "tiny_att", TINY_ATT)


@pytest.fixture(scope="session")
def tiny_att_onnx(tiny_att_run, tmp_path_factory) -> Path:
    return _export(tmp_path_factory, "onnx_att", tiny_att_run / "checkpoint.pth")


@pytest.fixture(scope="session")
def tiny_att_onnx_int8(tiny_att_run, tmp_path_factory) -> Path:
    return _export(tmp_path_factory, "onnx_att8", tiny_att_run / "checkpoint.pth", quantize="int8")


@pytest.fixture(scope="session")
def tiny_att_onnx_sl(tiny_att_run, tmp_path_factory) -> Path:
    """With per-source lists (`trainer shortlist --frequent 1000 --per-source 100`, counted over the
    training targets), whose rows come to decoder_shortlist.onnx as inputs: its 1,000 frequent ids
    hold the tiny model's whole vocabulary."""
    import shutil

    from trainer.shortlist import ShortlistConfig, add_shortlist

    checkpoint = tmp_path_factory.mktemp("att_sl") / "checkpoint.pth"
    shutil.copy(tiny_att_run / "checkpoint.pth", checkpoint)
    add_shortlist(checkpoint, ShortlistConfig(1000, 100, from_model=False), cache_dir=str(tiny_att_run / "cache"))
    return _export(tmp_path_factory, "onnx_att_sl", checkpoint, shortlist=True)


@pytest.fixture(scope="session")
def tiny_att_onnx_fixed(tiny_att_run, tiny_att_onnx, tmp_path_factory) -> Path:
    """A fixed shortlist of 40% of the target vocabulary: format 8, its decoder a Loop over its step."""
    import numpy as np

    from runtime import Translator
    from tests.runtime.test_shortlist import _fixed_folder

    v = Translator(tiny_att_onnx).config.tgt_vocab_size
    return _fixed_folder(tiny_att_run, tmp_path_factory.mktemp("fixed") / "fixed", np.arange(4, v * 4 // 10))
