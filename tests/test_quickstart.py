"""The README's quickstart, as a user runs it: default training, evaluation, export, translation."""
import re
import subprocess

import pytest

from tests.conftest import PY, run_env


def _run(*args, cwd):
    r = subprocess.run([PY, "-m", *args], capture_output=True, text=True, env=run_env(), cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.slow
def test_default_fit_reaches_bleu_60_and_translates_hello(tmp_path):
    _run("trainer", "fit", cwd=tmp_path)  # defaults: builtin corpus, artifacts/ under cwd
    out = _run("trainer", "evaluate", "artifacts/checkpoint.pth", "--data", "builtin:test", cwd=tmp_path)
    bleu = float(re.search(r"BLEU = ([\d.]+)", out).group(1))
    assert bleu >= 60, out
    _run("export", "onnx", "artifacts/checkpoint.pth", cwd=tmp_path)
    hello = _run("runtime", "translate", "hello", cwd=tmp_path).strip()
    assert hello == "Bonjour"
    assert _run("runtime", "translate", "thank you", "she is tired", cwd=tmp_path).splitlines() == ["Merci", "Elle est fatiguée"]
