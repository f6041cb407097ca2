"""The README's quickstart, as a user runs it: default training, evaluation, export, translation,
and every example translation the README shows."""
import ast
import re
import shlex
import subprocess

import pytest

from tests.conftest import PY, ROOT, run_env

README = (ROOT / "README.md").read_text(encoding="utf-8")
# `runtime translate "a" "b"   # -> A | B`
CLI_EXAMPLES = re.findall(r'^runtime translate ((?:"[^"]*"\s*)+)#\s*->\s*(.+)$', README, re.M)
# `t.translate(<literal>)   # <literal>`
API_EXAMPLES = [(a, b) for a, b in re.findall(r"^t\.translate\((.+?)\)\s+#\s*(.+)$", README, re.M)
                if b.strip()[0] in "'[" and "Hypothesis" not in b]
# the set-up command ends with `runtime translate "..."`, and the text says what its last line is
SETUP_TEXT = re.search(r'^python3 -m venv .* && runtime translate "([^"]+)"$', README, re.M)
SETUP_LAST_LINE = re.search(r"the last\s+line is `([^`]+)`", README)


# written forms that must not change the translation (compared ignoring case: ALL CAPS comes back in
# capitals). Chosen, like the README's examples, from what every 18-epoch quickstart model translated
# alike (seeds 0 and 1, and seed 0 with PyTorch held to AVX2, whose weights differ from AVX-512's): a
# model of 4,308 pairs is not sure of every form of every sentence ("She is tired" without its period
# came out "Elle est fatigué." on one of them, "We are tired" "Nous sommes fatiguées." on another), so
# only forms all three agree on are promised (checked again with the attention keys of format 4)
SAME_TRANSLATION = [
    ("Where is the station?", "where is the station", "Where is the station", "WHERE IS THE STATION?"),
    ("She is tired.", "she is tired", "SHE IS TIRED."),
    ("The cat is black.", "the cat is black", "THE CAT IS BLACK."),
    ("Anna lives in Boston.", "anna lives in boston", "ANNA LIVES IN BOSTON."),
]
# capitalised names come out of the translation unchanged
CARRIED = [
    ("Anna lives in Boston.", ["Anna", "Boston"]),
    ("Paul lives in Rome.", ["Paul", "Rome"]),
    ("Marie is tired.", ["Marie"]),
]


def _run(*args, cwd):
    r = subprocess.run([PY, "-m", *args], capture_output=True, text=True, env=run_env(), cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_readme_examples_are_found():
    assert len(CLI_EXAMPLES) >= 2 and len(API_EXAMPLES) >= 2, (CLI_EXAMPLES, API_EXAMPLES)
    assert SETUP_TEXT and SETUP_LAST_LINE


@pytest.mark.slow
def test_default_fit_reaches_bleu_60_and_the_readme_examples_come_out_as_shown(tmp_path):
    _run("trainer", "fit", cwd=tmp_path)  # defaults: builtin corpus, artifacts/ under cwd
    out = _run("trainer", "evaluate", "artifacts/checkpoint.pth", "--data", "builtin:test", cwd=tmp_path)
    bleu = float(re.search(r"BLEU = ([\d.]+)", out).group(1))
    assert bleu >= 60, out
    _run("export", "onnx", "artifacts/checkpoint.pth", cwd=tmp_path)
    assert _run("runtime", "translate", SETUP_TEXT[1], cwd=tmp_path).strip() == SETUP_LAST_LINE[1]
    for args, expected in CLI_EXAMPLES:
        got = _run("runtime", "translate", *shlex.split(args), cwd=tmp_path).splitlines()
        assert got == [e.strip() for e in expected.split(" | ")], args
    from runtime import Translator

    t = Translator(tmp_path / "artifacts" / "onnx")
    for args, expected in API_EXAMPLES:
        assert t.translate(ast.literal_eval(args)) == ast.literal_eval(expected.strip()), args
    for forms in SAME_TRANSLATION:
        assert len({out.lower() for out in t.translate(list(forms))}) == 1, (forms, t.translate(list(forms)))
    for text, kept in CARRIED:
        out = t.translate(text)
        assert all(k in out.split(" ") or k + "." in out.split(" ") for k in kept), (text, out)
