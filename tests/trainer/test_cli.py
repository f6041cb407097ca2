import subprocess

import re

import pytest

from trainer.augment import epoch_masks
import torch
from click.testing import CliRunner

from tests.conftest import PY, run_env
from trainer.cli import cli


def _invoke(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("content,args,message", [
    (None, ["--data", "{d}/missing.tsv"], "no such file"),
    (b"", ["--data", "{d}/empty.tsv"], "empty"),
    (b"\xff\xfe\x00bad\tx\n", ["--data", "{d}/latin.tsv"], "not valid UTF-8"),
    (None, ["--data", "ftp:corpus"], "unknown --data scheme"),
    (b"hello\nworld\n", ["--data", "{d}/one.tsv"], "none of its 2 rows is a usable pair: 2 with the wrong number of columns"),
    (b"English,French\n", ["--data", "{d}/head.csv"], "head.csv: no rows after its header"),
    (b"a\t \n\tb\n", ["--data", "{d}/blank.tsv"], "none of its 2 rows is a usable pair: 2 with an empty side"),
    (b"a\t \n\tb\n", ["--data", "{d}/blank.tsv", "--vocab", "word"], "2 with an empty side"),
])
def test_bad_data_is_one_line_error_and_keeps_existing_output(tmp_path, content, args, message):
    name = args[1].split("/")[-1]
    if content is not None:
        (tmp_path / name).write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint.pth").write_bytes(b"previous")
    # --force: even a run allowed to replace the earlier checkpoint leaves it alone when the data is bad
    r = _invoke("fit", *[a.format(d=tmp_path) for a in args], "--out", str(out), "--force")
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert (out / "checkpoint.pth").read_bytes() == b"previous"


@pytest.mark.parametrize("args,batch_tokens,batch_size", [
    ([], 544, 64),                                         # the default: batches by size
    (["--batch-tokens", "1000"], 1000, 64),
    (["--batch-tokens", "0"], 0, 64),                      # sentence batches of --batch-size
    (["--batch-size", "32"], 0, 32),                       # --batch-size alone: sentence batches, as before
    (["--batch-size", "32", "--batch-tokens", "800"], 800, 32),
])
def test_fit_batching_options(monkeypatch, tmp_path, args, batch_tokens, batch_size):
    import trainer.train

    seen = []
    monkeypatch.setattr(trainer.train, "fit", lambda cfg, **kw: seen.append(cfg))
    r = _invoke("fit", "--out", str(tmp_path), *args)
    assert r.exit_code == 0, r.output
    assert (seen[0].batch_tokens, seen[0].batch_size) == (batch_tokens, batch_size)


@pytest.mark.parametrize("args, rates, restore_case", [
    ([], dict(lowercase=0.3, lower_first=0.1, strip_punct=0.3, upper=0.0, title=0.0), True),  # the defaults
    (["--augment", "lowercase=0.5,strip-punct=0"], dict(lowercase=0.5, lower_first=0.1, strip_punct=0.0), True),
    (["--no-augment"], dict(lowercase=0.0, lower_first=0.0, strip_punct=0.0, upper=0.0, title=0.0), True),
    (["--keep-input-case", "--augment", "upper=0.1,title=0.1"], dict(upper=0.1, title=0.1), False),
])
def test_fit_augmentation_options(monkeypatch, tmp_path, args, rates, restore_case):
    import trainer.train

    seen = []
    monkeypatch.setattr(trainer.train, "fit", lambda cfg, **kw: seen.append(cfg))
    r = _invoke("fit", "--out", str(tmp_path), *args)
    assert r.exit_code == 0, r.output
    assert {k: getattr(seen[0].augment, k) for k in rates} == rates and seen[0].data.restore_case is restore_case


@pytest.mark.parametrize("args, message", [
    (["--augment", "lowercase=2"], "lowercase needs a rate from 0 to 1"),
    (["--augment", "shouting=0.1"], "unknown modifier 'shouting'"),
    (["--augment", "lowercase=0.1", "--no-augment"], "give --augment or --no-augment, not both"),
])
def test_bad_augmentation_options_are_usage_errors(tmp_path, args, message):
    r = _invoke("fit", "--out", str(tmp_path), *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_runs_saved_before_augmentation_resume_without_it():
    from trainer.config import TrainConfig

    old = TrainConfig.from_dict({"batch_size": 32, "epochs": 1})
    assert epoch_masks(10, old.augment, 0, 1) is None and old.data.restore_case is False


def test_config_saved_before_token_batches_keeps_sentence_batches():
    from dataclasses import asdict

    from trainer.config import TrainConfig

    assert TrainConfig.from_dict({"batch_size": 32, "epochs": 1}).batch_tokens == 0  # saved before the field
    assert TrainConfig.from_dict(asdict(TrainConfig(batch_tokens=700))).batch_tokens == 700
    assert TrainConfig.from_dict({**asdict(TrainConfig()), "batch_tokens": None}).batch_tokens == 0  # as saved before


@pytest.mark.slow
def test_a_pair_longer_than_the_model_takes_is_skipped_not_trained_on(tmp_path):
    """One line of 300,000 characters a side in a small corpus: left out and counted in the one
    warning (before, its target went whole into a batch: minutes per step and gigabytes)."""
    f = tmp_path / "p.tsv"
    f.write_text("hello\tbonjour\n" * 30 + " ".join(["word"] * 60_000) + "\t" + " ".join(["mot"] * 60_000) + "\n"
                 + "thank you\tmerci\n" * 30, encoding="utf-8")
    r = _invoke("fit", "--data", str(f), "--out", str(tmp_path / "o"), "--epochs", "1", "--hidden-dim", "8", "--emb-dim",
                "4", "--vocab", "word")
    assert r.exit_code == 0, r.output
    assert r.output.count("warning: skipped 1 rows: 1 longer than --max-source-len 100 source ids or --max-target-len "
                          "256 target tokens") == 1
    train, valid = map(int, re.search(r"(\d+) train / (\d+) valid pairs", r.output).groups())
    assert train + valid == 60  # of 61


@pytest.mark.slow
def test_skipped_rows_counted_in_one_warning(tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("hello\tbonjour\n\tnothing\nonly one column\n" + "thank you\tmerci\n" * 5, encoding="utf-8")
    r = _invoke("fit", "--data", str(f), "--out", str(tmp_path / "o"), "--epochs", "1", "--hidden-dim", "8", "--emb-dim", "4")
    assert r.exit_code == 0, r.output
    assert r.output.count("warning: skipped 2 rows: 2 with an empty side or the wrong number of columns") == 1


def test_evaluate_rejects_foreign_and_malicious_files(tmp_path):
    (tmp_path / "notes.pth").write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pth")
    for name, msg in (("notes.pth", "not a readable checkpoint"), ("other.pth", "not a seq2seq-edge checkpoint"),
                      ("absent.pth", "no such checkpoint")):
        r = _invoke("evaluate", str(tmp_path / name))
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output


def test_evaluate_prints_loss_bleu_chrf_and_samples(tiny_ckpt):
    r = _invoke("evaluate", str(tiny_ckpt), "--data", "builtin:test", "--max-pairs", "40", "--samples", "2")
    assert r.exit_code == 0, r.output
    assert "perplexity" in r.output and "BLEU = " in r.output and "chrF = " in r.output
    assert r.output.count("  hyp: ") == 2


def test_entry_points(tmp_path):
    for cmd in ([PY, "-m", "trainer", "--help"],):
        r = subprocess.run(cmd, capture_output=True, text=True, env=run_env())
        assert r.returncode == 0 and "fit" in r.stdout and "evaluate" in r.stdout


def test_console_scripts_when_installed():
    from pathlib import Path

    for name, word in (("trainer", "fit"), ("runtime", "translate"), ("seq2seq-export", "onnx")):
        exe = Path(PY).parent / name  # pip puts console scripts beside the interpreter
        if not exe.exists():
            pytest.skip("package not installed (pip install -e .[train,dev] installs the console scripts)")
        r = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and word in r.stdout
