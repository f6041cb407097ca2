import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.cli import cli
from runtime.model_format import FORMAT_VERSION
from tests.conftest import PY, ROOT, run_env


def _run(*args, **kw):
    return CliRunner().invoke(cli, list(args), **kw)


def test_translate_arguments_and_json(tiny_onnx):
    r = _run("translate", "--model", str(tiny_onnx), "hello", "thank you")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 2
    plain = r.stdout.splitlines()
    r = _run("translate", "--model", str(tiny_onnx), "--json", "hello", "thank you")
    records = [json.loads(line) for line in r.stdout.splitlines()]  # JSON Lines: one object per input line
    assert [(d["index"], d["source"], d["translation"]) for d in records] == [(0, "hello", plain[0]), (1, "thank you", plain[1])]


def test_model_from_environment_variable(tiny_onnx, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no artifacts/onnx here: only the variable can name the model
    assert _run("translate", "hello").exit_code != 0
    monkeypatch.setenv("SEQ2SEQ_MODEL", str(tiny_onnx))
    r = _run("translate", "hello")
    assert r.exit_code == 0 and r.stdout == _run("translate", "--model", str(tiny_onnx), "hello").stdout
    assert f"model folder      {tiny_onnx}" in _run("info").output


def test_input_file_stdin_and_output_file(tiny_onnx, tmp_path):
    lines = ["hello", "", "the cat is black"] * 40
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    r = _run("translate", "--model", str(tiny_onnx), "--input", str(src), "--output", str(out), "--batch-size", "4")
    assert r.exit_code == 0, r.output
    written = out.read_text(encoding="utf-8").splitlines()
    assert len(written) == len(lines) and written[1] == "" and written[0] == written[3]
    r = _run("translate", "--model", str(tiny_onnx), "--input", "-", input="\n".join(lines[:3]) + "\n")
    assert r.stdout.splitlines() == written[:3]


def test_invalid_utf8_input_names_the_line(tiny_onnx, tmp_path):
    src = tmp_path / "bad.txt"
    src.write_bytes(b"hello\nok\n\xff\xfebad\n")
    r = _run("translate", "--model", str(tiny_onnx), "--input", str(src))
    assert r.exit_code == 1 and "line 3 is not valid UTF-8" in r.output


@pytest.mark.parametrize("args,message", [
    (["--beam", "0", "x"], "--beam"),
    (["--beam", "-2", "x"], "--beam"),
    (["--beam", "2", "--n-best", "3", "x"], "--n-best 3 is larger than --beam 2"),
    (["--length-penalty", "-1", "x"], "--length-penalty"),
])
def test_bad_options(tiny_onnx, args, message):
    r = _run("translate", "--model", str(tiny_onnx), *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_missing_and_corrupt_model_folder(tiny_onnx, tmp_path):
    r = _run("translate", "--model", str(tmp_path / "none"), "hello")
    assert r.exit_code == 1 and "python -m export onnx" in r.output and len(r.output.strip().splitlines()) == 1
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    r = _run("translate", "--model", str(bad), "hello")
    assert r.exit_code == 1 and "unreadable" in r.output and "Traceback" not in r.output


def test_long_text_is_cut_to_fit_and_without_splitting_truncated_with_one_warning(tiny_onnx):
    """Sentence splitting cuts a sentence longer than the model takes on whitespace (no truncation);
    --no-split translates each text whole, truncating it, with one warning for all texts."""
    whole = _run("translate", "--model", str(tiny_onnx), "--no-split", "cat " * 300, "dog " * 300)
    assert whole.exit_code == 0 and whole.stderr.count("warning:") == 1 and len(whole.stdout.splitlines()) == 2
    cut = _run("translate", "--model", str(tiny_onnx), "cat " * 300, "dog " * 300)
    assert cut.exit_code == 0 and "warning:" not in cut.stderr and len(cut.stdout.splitlines()) == 2
    assert len(cut.stdout.split()) > 2 * len(whole.stdout.split())  # every piece of the text translated


def test_info(tiny_onnx):
    r = _run("info", str(tiny_onnx))
    assert r.exit_code == 0
    for word in (f"format version    {FORMAT_VERSION}", "encoder.onnx", "target", "CPUExecutionProvider",
                 "text              en -> fr; ALL CAPS and Title Case read as sentence case"):
        assert word in r.output


def test_n_best_with_scores(tiny_onnx):
    r = _run("translate", "--model", str(tiny_onnx), "--beam", "4", "--n-best", "3", "--json", "the cat is black")
    hyps = json.loads(r.stdout)["hypotheses"]
    assert len(hyps) == 3 and [h["score"] for h in hyps] == sorted((h["score"] for h in hyps), reverse=True)


def test_python_m_runtime_and_the_console_script_translate_alike(tiny_onnx):
    args = ["translate", "--model", str(tiny_onnx), "--device", "cpu", "hello"]
    r = subprocess.run([PY, "-m", "runtime", *args], capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1, r.stderr
    script = Path(PY).parent / "runtime"  # installed by pip install -e . beside this python
    s = subprocess.run([str(script), *args], capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert s.returncode == 0 and s.stdout == r.stdout, s.stderr


@pytest.mark.parametrize("code, rc, err", [(None, 0, ""), (3, 3, ""), ("no model folder", 1, "no model folder")])
def test_the_program_ends_without_teardown_after_atexit_and_flushing(code, rc, err):
    """The `runtime` program's exit (runtime.cli._exit_now) skips Python's teardown (an object's
    finalizer does not run: the OS frees the sessions' memory at once) but still runs the atexit
    functions and flushes what was printed, and keeps the exit status (a message: 1, on stderr)."""
    probe = ("import atexit, sys, runtime.cli\n"
             "class Finalized:\n"
             "    def __del__(self):\n"
             "        print('teardown ran')\n"
             "kept = Finalized()\n"
             "atexit.register(lambda: print('atexit ran', end=' '))\n"
             "print('buffered', end=' ')\n"
             f"runtime.cli._exit_now({code!r})\n")
    r = subprocess.run([PY, "-c", probe], capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert (r.returncode, r.stdout, r.stderr.strip()) == (rc, "buffered atexit ran ", err)
