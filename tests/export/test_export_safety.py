"""`export onnx --force` killed at every step: the target folder is always one complete folder,
the old or the new, and the next export cleans up what the killed one left."""
import os
import shutil
import subprocess
import textwrap

import pytest

from runtime.model_format import load_config
from tests.conftest import PY, ROOT, run_env

# each step patches one function of the export path so the process dies right there (SIGKILL-like:
# os._exit skips every cleanup handler)
KILLS = {
    "mid-build": "F.write_files = die",
    "before-swap": "A._exchange = die",
    "after-swap": "orig = A._exchange\nA._exchange = lambda a, b: (orig(a, b), die())",
    "mid-file-write": "A.os.fsync = die",  # a file of the new folder half-written
    # the portable path (no renameat2 exchange): killed between its two renames
    "fallback-between-renames": textwrap.dedent("""
        A._exchange = lambda a, b: False
        orig_replace, orig_folder, calls = os.replace, A.replace_folder, []
        def counting_replace(a, b):
            calls.append(a)
            if len(calls) == 2:
                die()
            return orig_replace(a, b)
        def replace_folder(new, target):
            A.os.replace = counting_replace
            return orig_folder(new, target)
        A.replace_folder = replace_folder
    """),
}
FILES = {"encoder.onnx", "decoder.onnx", "encoder.safetensors", "decoder.safetensors", "source_vocabulary.json",
         "target_vocabulary.json", "tokenizer.json"}
# where each kill leaves the target: still the old folder, or already the new one
EXPECT_OLD = {"mid-build": True, "mid-file-write": True, "before-swap": True, "after-swap": False,
              "fallback-between-renames": None}  # None: gone for an instant; the next export restores the old one


def _killed_export(ckpt, out, step):
    script = "\n".join([
        "import os, sys",
        "import runtime.atomic as A, export.folder as F",
        "def die(*a, **k):",
        "    os._exit(9)",
        KILLS[step],
        "from export.cli import cli",
        f"cli(['onnx', {str(ckpt)!r}, '--out', {str(out)!r}, '--force', '--no-verify'])",
    ])
    return subprocess.run([PY, "-c", script], capture_output=True, text=True, env=run_env(), cwd=ROOT)


@pytest.mark.parametrize("step", list(KILLS))
def test_killed_export_leaves_a_complete_folder_and_the_next_export_cleans_up(tiny_ckpt, tiny_onnx, tmp_path, step):
    from export.folder import ExportError, export_onnx

    out = tmp_path / "model"
    shutil.copytree(tiny_onnx, out)
    (out / "OLD-MARKER").write_text("the folder that was there before")
    r = _killed_export(tiny_ckpt, out, step)
    assert r.returncode == 9, r.stderr  # it really died at that step
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model"]
    if EXPECT_OLD[step] is None:
        assert not out.exists() and any(".model.old-" in n for n in leftovers)
    else:
        load_config(out)  # complete: every file present and matching its sha256
        assert (out / "OLD-MARKER").exists() == EXPECT_OLD[step]
    assert leftovers, "a kill at this step leaves a temporary folder behind"
    # the next export: restores a folder put aside, removes every temporary folder, refuses without --force
    with pytest.raises(ExportError, match="exists; pass --force"):
        export_onnx(tiny_ckpt, out, verify=False)
    assert set(load_config(out).files) == FILES and [p.name for p in tmp_path.iterdir()] == ["model"]
    assert (out / "OLD-MARKER").exists() == (EXPECT_OLD[step] is not False)  # the old folder, put back if aside
    export_onnx(tiny_ckpt, out, verify=False, force=True)
    assert not (out / "OLD-MARKER").exists() and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_live_exports_temporary_folders_are_not_touched(tiny_ckpt, tmp_path):
    """A temporary folder whose writer is still running belongs to a concurrent export: keep it."""
    from export.folder import export_onnx

    live = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".model.tmp-{live.pid}-abcd"
        busy.mkdir()
        dead = tmp_path / ".model.tmp-999999999-abcd"
        dead.mkdir()
        export_onnx(tiny_ckpt, tmp_path / "model", verify=False)
        assert busy.exists() and not dead.exists()
    finally:
        live.kill()


def test_everything_written_has_normal_permissions(tiny_onnx, tiny_ckpt):
    mask = os.umask(0o022)
    os.umask(mask)
    assert tiny_onnx.stat().st_mode & 0o777 == 0o777 & ~mask
    for f in tiny_onnx.iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f
    for f in tiny_ckpt.parent.iterdir():
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f


def test_int8_export_prints_no_library_log_lines(tiny_ckpt, tmp_path):
    r = subprocess.run([PY, "-m", "export", "onnx", str(tiny_ckpt), "--out", str(tmp_path / "q"), "--quantize", "int8",
                        "--no-verify"], capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "WARNING" not in r.stdout and r.stdout.strip().endswith(f"wrote {tmp_path / 'q'}")


def test_export_writes_only_a_folder_the_runtime_accepts(tiny_spm_run, tmp_path, monkeypatch):
    """The finished folder goes through the runtime's own checks (the same code) before it is put in
    place: here a SentencePiece model over the runtime's size bound."""
    import runtime.model_format as mf
    from export.folder import ExportError, export_onnx

    monkeypatch.setitem(mf.MAX_BYTES, mf.SOURCE_SPM_FILE, 1000)
    with pytest.raises(ExportError, match="the runtime would refuse this folder, nothing written: "
                                          "source_sentencepiece.model: .* bytes, more than the 1,000 allowed"):
        export_onnx(tiny_spm_run / "checkpoint.pth", tmp_path / "model", verify=False)
    assert list(tmp_path.iterdir()) == []


def test_a_second_export_into_the_same_folder_is_refused_while_the_first_runs(tiny_ckpt, tmp_path):
    from runtime.lock import exclusive, lock_path

    out = tmp_path / "model"
    with exclusive(lock_path(out, inside=False), "test"):  # the first export, still writing
        r = subprocess.run([PY, "-m", "export", "onnx", str(tiny_ckpt), "--out", str(out)], capture_output=True,
                           text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"--out {out} is in use by process {os.getpid()}" in r.stderr and not out.exists()
    r = subprocess.run([PY, "-m", "export", "onnx", str(tiny_ckpt), "--out", str(out), "--no-verify"], capture_output=True,
                       text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 0 and load_config(out) and [p.name for p in tmp_path.iterdir()] == ["model"]
