"""`runtime translate` at its edges: nothing lost, one-line errors in the user's order, parseable output."""
import json
import os
import subprocess

import pytest
from click.testing import CliRunner

from runtime import Translator
from runtime.cli import cli
from tests.conftest import PY, ROOT, run_env


def _run(*args, **kw):
    return CliRunner().invoke(cli, list(args), **kw)


def _one_line_error(r, code=1, *words):
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    for w in words:
        assert w in r.output, r.output


def _sh(cmd: str, **kw):
    """A shell pipeline as a user types it, with the runtime as `python -m runtime`."""
    return subprocess.run(["bash", "-c", cmd.replace("runtime ", f"{PY} -m runtime ", 1)], capture_output=True,
                          env=run_env(), cwd=ROOT, **kw)


# ---- nothing is ever lost --------------------------------------------------------------------

def test_failed_run_leaves_existing_output_exactly_as_it_was(tiny_onnx, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"hello\n" * 599 + b"\xff\xfe broken\n" + b"hello\n" * 50)  # invalid UTF-8 on line 600
    out = tmp_path / "out.txt"
    out.write_text("yesterday's translations\n")
    r = _run("translate", "--model", str(tiny_onnx), "--input", str(src), "--output", str(out), "--batch-size", "16")
    _one_line_error(r, 1, "line 600 is not valid UTF-8")
    assert out.read_text() == "yesterday's translations\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.txt"]  # no temporary file left


def test_output_that_is_the_input_is_refused_and_the_input_kept(tiny_onnx, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("hello\nthank you\n")
    for same in (src, tmp_path / "." / "in.txt"):
        r = _run("translate", "--model", str(tiny_onnx), "--input", str(src), "--output", str(same))
        _one_line_error(r, 1, "is the --input file")
    link = tmp_path / "link.txt"
    link.symlink_to(src)
    _one_line_error(_run("translate", "--model", str(tiny_onnx), "--input", str(link), "--output", str(src)), 1,
                    "is the --input file")
    assert src.read_text() == "hello\nthank you\n"


def test_output_that_is_standard_input_is_refused_and_the_input_kept(tiny_onnx, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("hello\nthank you\n")
    r = _sh(f"runtime translate --model {tiny_onnx} --output {src} < {src}")
    assert r.returncode == 1 and b"is standard input" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert src.read_text() == "hello\nthank you\n"


def test_output_file_gets_normal_permissions(tiny_onnx, tmp_path):
    out = tmp_path / "out.txt"
    assert _run("translate", "--model", str(tiny_onnx), "--output", str(out), "hello").exit_code == 0
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


# ---- errors come in the user's order, one line each ------------------------------------------

def test_missing_input_is_reported_before_the_model_loads(tmp_path):
    r = _run("translate", "--model", str(tmp_path / "no-model"), "--input", str(tmp_path / "missing.txt"))
    _one_line_error(r, 1, "--input", "missing.txt", "No such file")
    _one_line_error(_run("translate", "--model", str(tmp_path / "no-model"), "--input", str(tmp_path)), 1, "is a folder")


@pytest.mark.parametrize("where,words", [
    ("{tmp}/no/such/dir/out.txt", ["--output", "does not exist"]),
    ("{tmp}", ["--output", "is a folder"]),
    ("/proc/out.txt", ["--output", "/proc/out.txt"]),  # a read-only place, even for root
])
def test_unwritable_output_is_one_line(tiny_onnx, tmp_path, where, words):
    r = _run("translate", "--model", str(tiny_onnx), "--output", where.format(tmp=tmp_path), "hello")
    _one_line_error(r, 1, *words)


def test_output_to_a_full_disk_is_one_line(tiny_onnx):
    r = _sh(f"runtime translate --model {tiny_onnx} --output /dev/full hello")
    assert r.returncode == 1 and r.stderr.decode().strip() == "Error: --output /dev/full: No space left on device"
    r = _sh(f"runtime translate --model {tiny_onnx} hello > /dev/full")
    assert r.returncode == 1 and r.stderr.decode().strip() == "Error: stdout: No space left on device"


def test_closed_stdout_pipe_is_one_line(tiny_onnx, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("hello\n" * 30000)  # far more output than a pipe buffer holds
    r = _sh(f"runtime translate --model {tiny_onnx} --input {src} --batch-size 256 | head -n 1; exit ${{PIPESTATUS[0]}}")
    assert r.stdout.decode().count("\n") == 1
    assert r.returncode == 1 and r.stderr.decode().strip() == "Error: stdout was closed before all translations were written"


def test_closed_stdin_is_one_line(tiny_onnx):
    r = _sh(f"runtime translate --model {tiny_onnx} <&-")
    assert r.returncode == 1 and r.stderr.decode().strip() == "Error: stdin is closed: nothing to translate"
    r = _sh(f"runtime translate --model {tiny_onnx} --input - <&-")
    assert r.returncode == 1 and r.stderr.decode().strip() == "Error: stdin is closed: nothing to translate"


def test_piped_stdin_is_read_without_input_dash(tiny_onnx):
    r = _sh(f"printf 'hello\\nthank you\\n' | runtime translate --model {tiny_onnx}")
    expected = Translator(tiny_onnx).translate(["hello", "thank you"])
    assert r.returncode == 0 and r.stdout.decode().splitlines() == expected


@pytest.mark.parametrize("args,word", [
    (["--length-penalty", "nan"], "--length-penalty"),
    (["--length-penalty", "inf"], "--length-penalty"),
    (["--threads", "0"], "--threads"),
    (["--batch-size", "0"], "--batch-size"),
    (["--max-len", "-3"], "--max-len"),
    (["--beam", "100000000"], "--beam"),  # would ask for terabytes: bounded by what can run
    (["--n-best", "100000000"], "--n-best"),
])
def test_numeric_options_are_checked_as_numbers(tiny_onnx, args, word):
    r = _run("translate", "--model", str(tiny_onnx), *args, "hello")
    assert r.exit_code == 2 and word in r.output and "Traceback" not in r.output


def test_far_too_many_threads_are_capped_with_a_notice(tiny_onnx):
    from runtime.cores import usable_cores

    r = _run("translate", "--model", str(tiny_onnx), "--threads", "100000", "hello")
    assert r.exit_code == 0 and f"capped at the {usable_cores()} usable cores" in r.stderr
    assert r.stdout.splitlines() == [Translator(tiny_onnx).translate("hello")]


def test_cpu_build_prints_no_cuda_notice(tiny_onnx):
    r = _sh(f"runtime translate --model {tiny_onnx} hello")
    assert r.returncode == 0 and r.stderr.decode() == ""


def test_export_says_a_missing_checkpoint_is_missing_even_if_out_exists(tmp_path):
    (tmp_path / "onnx").mkdir()
    r = subprocess.run([PY, "-m", "export", "onnx", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "onnx")],
                       capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 1 and r.stderr.strip() == f"Error: {tmp_path / 'missing.pth'}: no such checkpoint file"


# ---- output a program can parse --------------------------------------------------------------

def test_n_best_alone_implies_the_beam_and_lines_carry_the_index(tiny_onnx):
    r = _run("translate", "--model", str(tiny_onnx), "--n-best", "3", "hello", "the cat is black")
    assert r.exit_code == 0, r.output
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert [int(i) for i, _, _ in rows] == [0, 0, 0, 1, 1, 1]
    best = Translator(tiny_onnx).translate(["hello", "the cat is black"], beam_size=3, n_best=3, return_scores=True)
    assert [(float(s), t) for _, s, t in rows] == [(round(h.score, 4), h.text) for sent in best for h in sent]


def test_json_lines_stream_one_object_per_input_line(tiny_onnx, tmp_path):
    lines = ["hello", "", "thank you"] * 5
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n")
    r = _run("translate", "--model", str(tiny_onnx), "--input", str(src), "--json", "--batch-size", "2")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["index"] for d in records] == list(range(len(lines)))
    assert [d["source"] for d in records] == lines
    assert records[1]["translation"] == "" and records[0]["translation"] == records[3]["translation"]


@pytest.mark.parametrize("program", [["-m", "runtime"], ["-m", "trainer"], ["-m", "export"]])
def test_version_on_every_command(program):
    from importlib.metadata import version

    for sub in ([], ["translate" if "runtime" in program else "fit" if "trainer" in program else "onnx"]):
        r = subprocess.run([PY, *program, *sub, "--version"], capture_output=True, text=True, env=run_env(), cwd=ROOT)
        assert r.returncode == 0 and r.stdout.strip() == f"seq2seq-edge {version('seq2seq-edge')}"


# ---- the Python API --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def translator(tiny_onnx):
    return Translator(tiny_onnx, device="cpu")


def test_a_string_gives_a_string_and_a_list_a_list(translator):
    texts = ["the cat is black", "hello", "thank you"]
    one = translator.translate(texts[0])
    assert type(one) is str and one and one == translator.translate([texts[0]])[0]
    many = translator.translate(texts)
    assert type(many) is list and many == [translator.translate(t) for t in texts]
    assert translator.translate(tuple(texts)) == many


def test_invalid_utf8_in_an_argument_is_one_line(tiny_onnx):
    """Bytes that are not UTF-8 in argv (Python decodes them with surrogateescape): the same one-line
    error as invalid UTF-8 in a file."""
    r = subprocess.run([PY, "-m", "runtime", "translate", "--model", str(tiny_onnx), "hello", b"caf\xe9"],
                       capture_output=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 1 and r.stderr.decode().strip() == "Error: argument 2 is not valid UTF-8", r.stderr


def test_api_refuses_text_that_is_not_unicode(translator):
    with pytest.raises(ValueError, match=r"texts\[1\] is not valid Unicode"):
        translator.translate(["hello", b"caf\xe9".decode("utf-8", "surrogateescape")])


def test_non_string_item_names_its_index(translator):
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        translator.translate(["hello", 3])
    with pytest.raises(TypeError, match="not bytes"):
        translator.translate(b"hello")


@pytest.mark.parametrize("kwargs", [dict(length_penalty=float("nan")), dict(length_penalty=float("inf")),
                                    dict(length_penalty=-1.0), dict(beam_size=0), dict(beam_size=2, n_best=3),
                                    dict(n_best=0), dict(max_len=0), dict(batch_size=0), dict(beam_size=2.5),
                                    dict(beam_size=10 ** 8)])
def test_api_validates_the_ranges_of_the_cli(translator, kwargs):
    with pytest.raises(ValueError):
        translator.translate(["hello"], **kwargs)


def test_api_threads(tiny_onnx):
    from runtime.cores import usable_cores

    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError):
            Translator(tiny_onnx, threads=bad)
    t = Translator(tiny_onnx, threads=10 ** 6)
    assert t.notice == f"threads {10 ** 6} capped at the {usable_cores()} usable cores"


def test_translate_lines_drops_line_endings_as_the_cli_does(translator, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"the cat is black\nthe dog is small\r\n\nhello")
    with open(path, encoding="utf-8", newline="") as f:  # newline="": the \r\n reaches translate_lines
        got = list(translator.translate_lines(f))
    assert got == translator.translate(["the cat is black", "the dog is small", "", "hello"])
    assert not any(line.endswith(("\n", "\r")) for line in got)


def test_translate_lines_streams_in_order(translator):
    lines = [f"the cat is black {'very ' * (i % 7)}" if i % 5 else "" for i in range(40)]
    consumed = []

    def source():
        for line in lines:
            consumed.append(line)
            yield line

    stream = translator.translate_lines(source(), chunk_size=8)
    first = next(stream)
    assert len(consumed) == 8  # it reads one chunk ahead, not the whole input
    assert [first, *stream] == translator.translate(lines)
