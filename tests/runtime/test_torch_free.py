import subprocess

from tests.conftest import PY, ROOT, run_env


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, env=run_env(), cwd=ROOT)


def test_runtime_never_imports_torch(tiny_onnx):
    r = _python(
        "import sys, runtime\n"
        f"t = runtime.Translator({str(tiny_onnx)!r}, device='cpu')\n"
        "print(t.translate(['hello', 'the cat is black'], beam_size=1))\n"
        "print(t.translate(['hello'], beam_size=2))\n"
        "from runtime import cli\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('TORCH-FREE')\n"
    )
    assert r.returncode == 0, r.stderr
    assert "TORCH-FREE" in r.stdout


def test_runtime_sources_do_not_import_torch_trainer_or_export():
    for path in (ROOT / "runtime").rglob("*.py"):
        text = path.read_text()
        for banned in ("import torch", "from torch", "import trainer", "from trainer", "import export", "from export"):
            assert banned not in text, f"{path.name}: {banned}"


def test_translates_with_torch_unimportable(tiny_onnx):
    """As on a deployment machine with no torch installed at all."""
    r = _python(
        "import sys\n"
        "sys.modules['torch'] = None  # any `import torch` now raises ImportError\n"
        "from runtime.cli import cli\n"
        f"cli(['translate', '--model', {str(tiny_onnx)!r}, '--device', 'cpu', 'hello', 'thank you'])\n"
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2


def test_without_onnxruntime_the_cli_says_what_to_install(tiny_onnx):
    r = _python(
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as on a plain `pip install .`\n"
        "from runtime.cli import cli\n"
        f"cli(['translate', '--model', {str(tiny_onnx)!r}, 'hello'])\n"
    )
    assert r.returncode == 1 and "pip install 'seq2seq-edge[cpu]'" in r.stderr and "Traceback" not in r.stderr
