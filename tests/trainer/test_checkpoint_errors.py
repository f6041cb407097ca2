"""Broken checkpoints, earlier runs in --out, and an install without torch: one line each."""
import subprocess

import pytest
import torch

from tests.conftest import PY, ROOT, TINY, run_env
from trainer.checkpoint import load_checkpoint


def _cli(*args, cwd=ROOT):
    return subprocess.run([PY, "-m", *args], capture_output=True, text=True, env=run_env(), cwd=cwd)


def _broken(tiny_ckpt, tmp_path, case) -> str:
    path = tmp_path / f"{case}.pth"
    if case == "empty":
        path.write_bytes(b"")
        return str(path)
    if case == "text":
        path.write_text("this is a text file, not a checkpoint\n")
        return str(path)
    ckpt = torch.load(tiny_ckpt, weights_only=True)
    if case == "missing-tensor":
        del ckpt["model_state"]["decoder.out.weight"]
    elif case == "wrong-shape":
        ckpt["model_state"]["encoder.embedding.weight"] = torch.zeros(7, 3)
    elif case == "duplicate-tokens":
        ckpt["tgt_vocab"][-1] = ckpt["tgt_vocab"][4]
    elif case == "vocab-size":
        ckpt["src_vocab"] = ckpt["src_vocab"] + ["extra"]
    elif case == "bad-config":
        ckpt["model_config"]["hidden_dim"] = "lots"
    elif case == "million-layers":
        ckpt["model_config"]["layers"] = 10 ** 6
    elif case == "huge-dims":
        ckpt["model_config"]["hidden_dim"] = 10 ** 7
    elif case == "unknown-attention":
        ckpt["model_config"]["attention"] = "bahdanau"
    elif case == "flag-not-bool":
        ckpt["model_config"]["reverse_source"] = "yes"
    elif case == "max-len-too-small":
        ckpt["model_config"]["max_source_len"] = 2
    elif case == "bad-tokenizer":
        ckpt["tokenizer"] = {"lowercase": "yes"}
    elif case == "spm-corrupt":
        ckpt["tokenizer"]["source_model"] = b"not a sentencepiece model"
    elif case == "spm-missing":
        del ckpt["tokenizer"]["target_model"]
    elif case == "spm-vocab-mismatch":
        ckpt["tgt_vocab"][4], ckpt["tgt_vocab"][5] = ckpt["tgt_vocab"][5], ckpt["tgt_vocab"][4]
    torch.save(ckpt, path)
    return str(path)


CASES = {
    "empty": "empty file",
    "text": "not a readable checkpoint",
    "missing-tensor": "lacks tensor 'decoder.out.weight'",
    "wrong-shape": "tensor 'encoder.embedding.weight' has shape (7, 3)",
    "duplicate-tokens": "tgt_vocab: a vocabulary has duplicate tokens",
    "vocab-size": "src_vocab has",
    "bad-config": "model_config is invalid",
    # values the runtime would refuse, and sizes no model has: refused before anything is allocated
    "million-layers": "model_config says 1000000 layers, model_state holds 2",
    "huge-dims": "tensor 'encoder.lstm.weight_hh_l0' has shape",
    "unknown-attention": "attention 'bahdanau' is not one of none, luong",
    "flag-not-bool": "reverse_source 'yes' is not true or false",
    "max-len-too-small": "max_source_len 2 is not an integer >= 3",
    "bad-tokenizer": "tokenizer: field 'lowercase'",
    "spm-corrupt": "tokenizer: the src SentencePiece model is corrupt",
    "spm-missing": "tokenizer: the tgt SentencePiece model is missing",
    "spm-vocab-mismatch": "tgt_vocab is not the list of pieces of its SentencePiece model",
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["export", "evaluate"])
def test_broken_checkpoint_is_one_line(tiny_ckpt, tiny_spm_run, tmp_path, case, command):
    path = _broken(tiny_spm_run / "checkpoint.pth" if case.startswith("spm-") else tiny_ckpt, tmp_path, case)
    from click.testing import CliRunner

    from export.cli import cli as export_cli
    from trainer.cli import cli as trainer_cli

    if command == "export":  # in this process (the CLIs' own subprocess behaviour: tests/runtime/test_cli_edges.py)
        r = CliRunner().invoke(export_cli, ["onnx", path, "--out", str(tmp_path / "onnx")])
    else:
        r = CliRunner().invoke(trainer_cli, ["evaluate", path, "--data", "builtin:test", "--max-pairs", "5"])
    r.returncode = r.exit_code
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith(f"Error: {path}: ") and CASES[case] in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "onnx").exists()


def _fit_args(out):
    return ["trainer", "fit", "--out", str(out), "--max-pairs", "200", "--epochs", "1", "--emb-dim", "8",
            "--hidden-dim", "16", "--layers", "1"]


@pytest.mark.slow
def test_fit_refuses_an_earlier_run_unless_resume_or_force(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pth").write_bytes(b"an earlier, better model")
    r = _cli(*_fit_args(out))
    assert r.returncode == 1 and "checkpoint.pth exists from an earlier run: pass --resume" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and (out / "checkpoint.pth").read_bytes() == b"an earlier, better model"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pth"]
    r = _cli(*_fit_args(out), "--resume", "--force")
    assert r.returncode == 1 and "give one of them" in r.stderr
    r = _cli(*_fit_args(out), "--force")
    assert r.returncode == 0, r.stderr
    torch.load(out / "checkpoint.pth", weights_only=True)  # replaced by the new run's


@pytest.mark.slow
def test_fit_into_an_empty_or_new_folder_needs_no_flag(tmp_path):
    from trainer.train import TrainConfig, fit

    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new"):
        best = fit(TrainConfig.from_flat(**{**TINY, "epochs": 1, "max_pairs": 100}, out=str(out)))
        assert best["epoch"] == 1  # trained, and wrote its run there
        assert load_checkpoint(out / "checkpoint.pth")["metrics"] == best and load_checkpoint(out / "last.pth")["epoch"] == 1


@pytest.mark.slow
def test_a_second_run_into_the_same_out_is_refused_while_the_first_runs(tmp_path):
    """One run at a time per --out: the second says who holds it; a lock whose holder was killed
    never blocks (the kernel drops it with the process)."""
    import os

    from runtime.lock import exclusive, lock_path

    out = tmp_path / "run"
    with exclusive(lock_path(out, inside=True), "test"):  # the first run, still training
        r = _cli(*_fit_args(out))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"--out {out} is in use by process {os.getpid()}" in r.stderr and not (out / "checkpoint.pth").exists()
    killed = subprocess.run([PY, "-c", "import os; from runtime.lock import exclusive, lock_path\n"
                             f"with exclusive(lock_path({str(out)!r}, inside=True), 'x'): os.kill(os.getpid(), 9)"],
                            env=run_env(), cwd=ROOT)
    assert killed.returncode == -9 and (out / ".lock").exists()  # died holding it
    r = _cli(*_fit_args(out))
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(out / "checkpoint.pth")["metrics"]["epoch"] == 1


@pytest.mark.slow
def test_resume_refuses_options_that_contradict_the_saved_run(tmp_path):
    out = tmp_path / "run"
    assert _cli(*_fit_args(out)).returncode == 0
    for extra, named in ((["--hidden-dim", "32"], "--hidden-dim 32 (the run has 16)"),
                         (["--no-augment"], "--augment lowercase=0,"),
                         (["--data", "builtin:test"], "--data builtin:test (the run has builtin)")):
        r = _cli(*_fit_args(out), "--resume", "--epochs", "2", *extra)
        assert r.returncode == 1 and named in r.stderr and "train anew with --force" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = _cli(*_fit_args(out), "--resume", "--epochs", "2", "--hidden-dim", "16")  # the same value, and a longer run
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(out / "last.pth")["epoch"] == 2


@pytest.mark.parametrize("program,extra", [
    (["trainer", "fit"], "seq2seq-edge[train]"),
    (["trainer", "evaluate", "x.pth"], "seq2seq-edge[train]"),
    (["export", "onnx", "x.pth"], "seq2seq-edge[train]"),
])
def test_without_torch_the_commands_say_which_extra_to_install(program, extra):
    # an edge install: torch (and onnx) can't be imported
    script = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None; import runpy; "
              f"sys.argv = {[program[0], *program[1:]]!r}; runpy.run_module({program[0]!r}, run_name='__main__')")
    r = subprocess.run([PY, "-c", script], capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert extra in r.stderr and "needs torch" in r.stderr


def test_checkpoint_from_before_attention_loads_as_the_paper_model(tiny_ckpt, tmp_path):
    """Checkpoints written before attention existed have no model_config["attention"]: they are
    the paper's model, for evaluate, export and --resume alike."""
    import torch

    from trainer.checkpoint import load_checkpoint, model_from_checkpoint
    from trainer.config import TrainConfig

    ckpt = torch.load(tiny_ckpt, weights_only=True)
    del ckpt["model_config"]["attention"]
    ckpt["train_config"]["model"].pop("attention")
    torch.save(ckpt, tmp_path / "old.pth")
    loaded = load_checkpoint(tmp_path / "old.pth")
    model, *_ = model_from_checkpoint(loaded)
    assert model.cfg.attention == "none" and model.decoder.attention is None
    assert TrainConfig.from_dict(loaded["train_config"]).model.attention == "none"
