import csv
import math
import signal
import subprocess
import time

import pytest
import torch

from tests.conftest import PY, TINY, needs_shared, run_env, TATOEBA
from trainer.checkpoint import load_checkpoint


def _metrics(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_fit_writes_best_last_metrics_and_plot(tiny_run):
    best = load_checkpoint(tiny_run / "checkpoint.pth")
    last = load_checkpoint(tiny_run / "last.pth")
    rows = _metrics(tiny_run / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "train_loss", "valid_loss", "valid_ppl", "seconds", "tgt_tokens_per_s"}
    # the best checkpoint is chosen by validation loss
    best_row = min(rows, key=lambda r: float(r["valid_loss"]))
    assert best["metrics"]["epoch"] == int(best_row["epoch"])
    assert {"optimizer_state", "epoch", "rng", "history", "samples"} <= set(last) and "optimizer_state" not in best
    assert (tiny_run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a checkpoint is tensors and plain values: weights_only loading works on its own
    raw = torch.load(tiny_run / "checkpoint.pth", weights_only=True)
    assert raw["src_vocab"][:4] == ["<pad>", "<unk>", "<sos>", "<eos>"] and raw["data"]["source"] == "builtin"
    assert raw["tokenizer"] == {"type": "word", "lowercase": True, "capitalize": True}
    assert raw["model_config"]["reverse_source"]


def _fit_cmd(out, epochs, *extra):
    args = [PY, "-m", "trainer", "fit", "--out", str(out), "--epochs", str(epochs), "--patience", "100",
            "--max-pairs", "1500", "--emb-dim", "16", "--hidden-dim", "64", "--seed", "5", "--batch-size", "32"]
    return args + list(extra)


@pytest.mark.slow
def test_killed_run_resumes_with_identical_losses(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(_fit_cmd(full, 4), check=True, env=run_env(), capture_output=True)
    proc = subprocess.Popen(_fit_cmd(cut, 4), env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once an epoch is saved, while the run goes on
        if (cut / "metrics.csv").exists() and len(_metrics(cut / "metrics.csv")) >= 1:
            break
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_metrics(cut / "metrics.csv"))
    assert 1 <= done < 4, "the run must be killed mid-way"
    load_checkpoint(cut / "checkpoint.pth")  # still readable after the kill
    load_checkpoint(cut / "last.pth")
    subprocess.run(_fit_cmd(cut, 4, "--resume"), check=True, env=run_env(), capture_output=True)
    a, b = _metrics(full / "metrics.csv"), _metrics(cut / "metrics.csv")
    assert [(r["epoch"], r["train_loss"], r["valid_loss"]) for r in a] == [(r["epoch"], r["train_loss"], r["valid_loss"]) for r in b]
    assert torch.equal(load_checkpoint(full / "last.pth")["model_state"]["decoder.out.weight"],
                       load_checkpoint(cut / "last.pth")["model_state"]["decoder.out.weight"])


@pytest.mark.slow
def test_teacher_forcing_ratio_runs_per_step_loop(tmp_path, monkeypatch):
    """Below 1.0 training steps the decoder token by token (feeding its own guesses); at 1.0 it takes the
    whole-sequence path, which never calls the one-step decoder."""
    from trainer.model import Decoder
    from trainer.train import TrainConfig, fit

    calls = []
    step = Decoder.step
    monkeypatch.setattr(Decoder, "step", lambda self, prev, state: calls.append(self.training) or step(self, prev, state))
    for ratio, stepped in ((0.5, True), (1.0, False)):
        calls.clear()
        best = fit(TrainConfig.from_flat(**{**TINY, "epochs": 1, "teacher_forcing": ratio}, out=str(tmp_path / str(ratio))))
        assert best["epoch"] == 1 and any(calls) == stepped, ratio


@needs_shared
@pytest.mark.slow
def test_trains_on_tatoeba(tmp_path):
    from trainer.train import TrainConfig, fit

    best = fit(TrainConfig.from_flat(data=str(TATOEBA / "train.tsv"), max_pairs=2000, emb_dim=16, hidden_dim=32, layers=1,
                           epochs=1, out=str(tmp_path)))
    ckpt = load_checkpoint(tmp_path / "checkpoint.pth")
    # it learned: a model that knows nothing scores ln V per token (uniform guesses, as at initialisation)
    assert best["valid_loss"] < math.log(len(ckpt["tgt_vocab"])) - 1 and ckpt["data"]["source"].endswith("train.tsv")


@pytest.mark.slow
def test_lr_decay_halves_the_rate_after_each_epoch_without_a_new_best_across_resume(tmp_path, monkeypatch):
    """--lr-decay 0.5: the learning rate in last.pth is lr x 0.5 per epoch whose validation loss was not a
    new best, counted over a run stopped after 4 epochs and resumed for 3 more. The validation losses are
    scripted (a trained trajectory differs between CPUs): epoch 5, the first one resumed, is worse than the
    best so far, so it decays only if the plateau's memory of the best loss travelled in last.pth."""
    import trainer.train
    from trainer.train import TrainConfig, fit

    scripted = iter([5.0, 4.0, 4.5, 3.0, 3.5, 2.0, 2.5])  # not a new best: epochs 3, 5 and 7
    monkeypatch.setattr(trainer.train, "loss_on", lambda *a, **k: next(scripted))
    cfg = dict(TINY, lr=0.3, lr_decay=0.5, patience=100, out=str(tmp_path))
    fit(TrainConfig.from_flat(**dict(cfg, epochs=4)))
    assert {g["lr"] for g in load_checkpoint(tmp_path / "last.pth")["optimizer_state"]["param_groups"]} == {0.3 * 0.5}
    fit(TrainConfig.from_flat(**dict(cfg, epochs=7)), resume=True)
    last = load_checkpoint(tmp_path / "last.pth")
    assert [h["valid_loss"] for h in last["history"]] == [5.0, 4.0, 4.5, 3.0, 3.5, 2.0, 2.5]
    assert {g["lr"] for g in last["optimizer_state"]["param_groups"]} == {0.3 * 0.5 ** 3}
    assert last["lr_schedule"]["best"] == 2.0 and last["train_config"]["lr_decay"] == 0.5
