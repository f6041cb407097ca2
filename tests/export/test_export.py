import json
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from export.cli import cli
from export.verify import sample_sentences
from runtime.model_format import FORMAT_VERSION, load_config
from tests.conftest import PY, ROOT, run_env
from trainer.checkpoint import load_checkpoint
from trainer.checkpoint import model_from_checkpoint


def test_folder_contents_config_and_checksums(tiny_onnx, tiny_ckpt):
    names = sorted(p.name for p in tiny_onnx.iterdir())
    assert names == ["config.json", "decoder.onnx", "decoder.safetensors", "encoder.onnx", "encoder.safetensors",
                     "source_vocabulary.json", "target_vocabulary.json", "tokenizer.json"]
    cfg = load_config(tiny_onnx)  # verifies every sha256
    ckpt = load_checkpoint(tiny_ckpt)
    assert cfg.format_version == FORMAT_VERSION and cfg.opset >= 17 and cfg.quantization is None
    assert set(cfg.files) == set(names) - {"config.json"}
    assert cfg.special_ids == {"pad": 0, "unk": 1, "sos": 2, "eos": 3} and cfg.reverse_source
    assert {"torch", "onnx", "onnxruntime"} <= set(cfg.producer)
    assert json.loads((tiny_onnx / "target_vocabulary.json").read_text()) == ckpt["tgt_vocab"]
    assert (cfg.layers, cfg.hidden_dim) == (ckpt["model_config"]["layers"], ckpt["model_config"]["hidden_dim"])
    for graph in ("encoder.onnx", "decoder.onnx"):
        m = onnx.load(str(tiny_onnx / graph))
        assert {p.key: p.value for p in m.metadata_props}["format_version"] == str(FORMAT_VERSION)
        onnx.checker.check_model(m, full_check=True)


def test_graph_signatures_with_dynamic_batch(tiny_onnx):
    enc = ort.InferenceSession(str(tiny_onnx / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(tiny_onnx / "decoder.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in enc.get_inputs()] == [("src_ids", "tensor(int64)"), ("src_lengths", "tensor(int64)")]
    # format 2: no `logits` output (format 1 had it; nothing read it)
    assert [o.name for o in dec.get_outputs()] == ["log_probs", "new_hidden", "new_cell", "next_ids"]
    h, c = enc.run(None, {"src_ids": np.array([[2, 5, 6, 3]] * 5), "src_lengths": np.array([4] * 5)})
    assert h.shape == c.shape == (2, 5, 32)
    log_probs, h2, _, nxt = dec.run(None, {"prev_ids": np.array([2] * 5), "hidden": h, "cell": c})
    assert log_probs.shape[0] == 5 and np.array_equal(nxt, log_probs.argmax(-1))
    assert np.allclose(np.exp(log_probs).sum(-1), 1, atol=1e-5)


def test_mixed_length_batch_parity_with_pytorch(tiny_onnx, tiny_ckpt):
    """Each sentence in a padded batch gets the state it gets alone, equal to PyTorch's."""
    model, *_ = model_from_checkpoint(load_checkpoint(tiny_ckpt))
    enc = ort.InferenceSession(str(tiny_onnx / "encoder.onnx"), providers=["CPUExecutionProvider"])
    rows = [[2, 5, 3], [2] + list(range(4, 40)) + [3], [2, 9, 3], [2, 7, 8, 9, 10, 3]]
    lengths = np.array([len(r) for r in rows])
    batch = np.zeros((len(rows), lengths.max()), dtype=np.int64)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    h, c = enc.run(None, {"src_ids": batch, "src_lengths": lengths})
    state = model.encoder(torch.from_numpy(batch), torch.from_numpy(lengths))
    th, tc = state["hidden"], state["cell"]
    # (float32 rounding: the cell reaches |c| ~ 5 here, so it is held relative to its size)
    assert np.allclose(h, th.detach().numpy(), rtol=1e-5, atol=1e-5) and np.allclose(c, tc.detach().numpy(), rtol=1e-5, atol=1e-5)
    for i, r in enumerate(rows):
        alone_h, alone_c = enc.run(None, {"src_ids": np.array([r]), "src_lengths": np.array([len(r)])})
        assert np.abs(alone_h[:, 0] - h[:, i]).max() <= 1e-5 and np.abs(alone_c[:, 0] - c[:, i]).max() <= 1e-5


def test_attention_encoder_equals_pytorch_on_a_padded_batch(tiny_att_onnx, tiny_att_run):
    """The encoder graph (built node by node) gives PyTorch's state, memory, keys and score bias for
    every sentence of a padded batch: the memory 0 and the score bias -inf exactly at its padding."""
    model, *_ = model_from_checkpoint(load_checkpoint(tiny_att_run / "checkpoint.pth"))
    from runtime.decode import pad_batch

    batch, lengths = pad_batch([[2, 5, 3], [2] + list(range(4, 30)) + [3], [2, 9, 8, 3]])
    enc = ort.InferenceSession(str(tiny_att_onnx / "encoder.onnx"), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in enc.get_outputs()], enc.run(None, {"src_ids": batch, "src_lengths": lengths})))
    with torch.no_grad():
        state = model.encoder(torch.from_numpy(batch), torch.from_numpy(lengths))
        state.update(model.decoder.attention.source_state(state["memory"], state["src_lengths"]))
    for name in ("hidden", "cell", "memory", "keys"):
        assert np.allclose(got[name], state[name].numpy(), rtol=1e-5, atol=1e-5), name
    padding = np.arange(lengths.max())[None, :] >= lengths[:, None]  # (B, S)
    assert np.array_equal(got["score_bias"][:, 0], np.where(padding, -np.inf, 0).astype(np.float32))
    assert not got["memory"][padding].any() and got["memory"][~padding].any()


def test_verification_sentences_include_one_token_and_max_length(tiny_ckpt):
    ckpt = load_checkpoint(tiny_ckpt)
    _, src_vocab, _, tok = model_from_checkpoint(ckpt)
    texts = sample_sentences(ckpt, tok, src_vocab, 100)
    lengths = sorted(len(tok.tokenize(t)) for t in texts)
    assert lengths[0] == 1 and lengths[-1] >= 98 and len(set(lengths)) > 3  # the longest is cut to 98 + <sos>/<eos>


def test_cli_report_and_bash_form(tiny_ckpt, tmp_path):
    out = tmp_path / "m"
    # `export` is a bash builtin: the documented form is `python -m export`, run through bash
    r = subprocess.run(["bash", "-c", f'"{PY}" -m export onnx "{tiny_ckpt}" --out "{out}"'],
                       capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "max |diff| hidden" in r.stdout and "relative to max(1, |cell|)" in r.stdout
    assert "greedy identical 18/18" in r.stdout
    load_config(out)


def test_int8_embeddings_are_int8_rows_with_a_scale_each(tiny_att_onnx_int8, tiny_att_onnx, tiny_att_run):
    """An int8 folder's graphs keep no float32 embedding table: each token's row is int8 with a
    scale of its own, within 1/254 of the row's largest value of the checkpoint's, and a lookup
    gives that row back (the encoder's first layer sees it: its state follows fp32's)."""
    from onnx import numpy_helper

    from export.quantize import EMBEDDING, EMBEDDING_ROWS, EMBEDDING_SCALES

    model, *_ = model_from_checkpoint(load_checkpoint(tiny_att_run / "checkpoint.pth"))
    for graph, module in (("encoder.onnx", model.encoder), ("decoder.onnx", model.decoder)):
        inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(tiny_att_onnx_int8 / graph)).graph.initializer}
        table = module.embedding.weight.detach().numpy()  # (V, E)
        rows, scales = inits[EMBEDDING_ROWS], inits[EMBEDDING_SCALES]
        assert EMBEDDING not in inits and rows.dtype == np.int8 and scales.shape == (len(table), 1)
        assert (np.abs(rows * scales - table).max(1) <= np.abs(table).max(1) / 254 + 1e-7).all()
    ids = np.array([[2, 5, 9, len(table) - 1, 3]])  # the last row too
    run = lambda folder: ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"]).run(
        ["memory"], {"src_ids": ids, "src_lengths": np.array([5])})[0]
    assert np.abs(run(tiny_att_onnx_int8) - run(tiny_att_onnx)).max() < 0.05


def test_int8_quantizes_lstm_and_output_projection(tiny_onnx_int8, tiny_onnx):
    from export.quantize import float_weight_ops, quantized_op_counts

    cfg = load_config(tiny_onnx_int8)
    assert cfg.quantization == "int8"
    dec_ops = quantized_op_counts(tiny_onnx_int8 / "decoder.onnx")
    assert dec_ops.get("DynamicQuantizeLSTM") == 2 and dec_ops.get("MatMulInteger") == 1  # the projection
    assert float_weight_ops(tiny_onnx_int8 / "decoder.onnx") == [] == float_weight_ops(tiny_onnx_int8 / "encoder.onnx")
    assert float_weight_ops(tiny_onnx / "decoder.onnx")  # the check itself can fail


def test_int8_cli_reports_agreement_and_size(tiny_ckpt, tiny_onnx, tmp_path):
    """The report's numbers are the folders': the agreement of the two folders' greedy output on the
    sentences export verifies with, and the graphs' sizes."""
    import re

    from export.verify import greedy_ids

    out = tmp_path / "q"
    r = CliRunner().invoke(cli, ["onnx", str(tiny_ckpt), "--out", str(out), "--quantize", "int8"])
    assert r.exit_code == 0, r.output
    m = re.search(r"int8: greedy output equals fp32 on (\d+)% of sentences; size ([\d.]+) MB -> ([\d.]+) MB "
                  r"\(([\d.]+)x smaller\)", r.output)
    assert m, r.output
    graphs = lambda folder: sum((folder / f).stat().st_size for g in ("encoder", "decoder")
                                for f in (f"{g}.onnx", f"{g}.safetensors"))  # with their weights files
    assert (float(m[2]), float(m[3])) == (round(graphs(tiny_onnx) / 1e6, 2), round(graphs(out) / 1e6, 2))
    assert float(m[4]) == round(graphs(tiny_onnx) / graphs(out), 1)
    ckpt = load_checkpoint(tiny_ckpt)
    model, src_vocab, _, tokenizer = model_from_checkpoint(ckpt)
    texts = sample_sentences(ckpt, tokenizer, src_vocab, model.cfg.max_source_len)
    ids = [greedy_ids((f / "encoder.onnx", f / "decoder.onnx"), texts, tokenizer, src_vocab, model.cfg) for f in (tiny_onnx, out)]
    assert int(m[1]) == round(100 * sum(a == b for a, b in zip(*ids)) / len(texts))


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned_marker",))


def _bad_checkpoints(tmp_path, tiny_ckpt):
    data = tiny_ckpt.read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    torch.save({"payload": Evil()}, tmp_path / "evil.pth")
    ckpt = torch.load(tiny_ckpt, weights_only=True)
    torch.save({**ckpt, "format_version": 99}, tmp_path / "future.pth")
    return {"missing.pth": "no such checkpoint", "truncated.pth": "not a readable checkpoint",
            "evil.pth": "refused to load", "future.pth": "format version 99"}


def test_bad_input_one_line_errors_nothing_lost(tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    for name, message in _bad_checkpoints(tmp_path, tiny_ckpt).items():
        r = CliRunner().invoke(cli, ["onnx", str(tmp_path / name), "--out", str(tmp_path / "new")])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, (name, r.output)
        assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "pwned_marker").exists()  # the pickle's code never ran
    assert not (tmp_path / "new").exists()
    r = CliRunner().invoke(cli, ["onnx", str(tiny_ckpt), "--out", str(existing)])
    assert r.exit_code == 1 and "--force" in r.output
    assert (existing / "keep.txt").read_text() == "mine"


def test_force_replaces_only_when_complete(tiny_ckpt, tmp_path, monkeypatch):
    import export.folder as folder

    out = tmp_path / "m"
    out.mkdir()
    (out / "keep.txt").write_text("old")

    def boom(*a, **k):
        raise RuntimeError("interrupted mid-export")

    monkeypatch.setattr(folder, "export_graphs", boom)
    with pytest.raises(RuntimeError):
        folder.export_onnx(tiny_ckpt, out, force=True)
    assert (out / "keep.txt").read_text() == "old"  # the failed export left the old folder
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # and no temporary folder behind
    monkeypatch.undo()
    folder.export_onnx(tiny_ckpt, out, force=True, verify=False)
    assert not (out / "keep.txt").exists() and load_config(out).format_version == FORMAT_VERSION


def test_parity_criterion():
    from export.verify import Report, VerificationError, assert_parity

    # large |cell| and very negative log-probs: float noise above 1e-4 absolute, within it relative
    ok = dict(hidden=1e-6, cell=2e-4, cell_scaled=2e-6, log_probs=2e-4, log_probs_scaled=4e-6)
    assert_parity(Report(sentences=3, max_diff=ok, greedy_identical=3))
    for bad in (dict(ok, hidden=2e-4), dict(ok, log_probs_scaled=5e-4), dict(ok, cell_scaled=2e-4)):
        with pytest.raises(VerificationError, match="disagree"):
            assert_parity(Report(sentences=3, max_diff=bad, greedy_identical=3))
    with pytest.raises(VerificationError, match="greedy identical on 2/3"):
        assert_parity(Report(sentences=3, max_diff=ok, greedy_identical=2))


def test_export_imports_only_the_trainers_checkpoint_and_model():
    import ast

    from tests.conftest import ROOT

    used = set()
    for f in (ROOT / "export").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trainer":
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used |= {a.name for a in node.names if a.name.split(".")[0] == "trainer"}
    assert "trainer.checkpoint" in used and used <= {"trainer.checkpoint", "trainer.model"}, used
