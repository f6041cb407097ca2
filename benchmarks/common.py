"""Shared helpers for the benchmark scripts (not part of the product)."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TATOEBA = SHARED / "tatoeba-fra"
MULTI30K = SHARED / "multi30k"
OUT = ROOT / "artifacts" / "bench"
# BENCH_TREE: another source tree's runtime and trainer (e.g. a `git worktree` of an earlier commit),
# for scripts that time two trees side by side in child processes
sys.path.insert(0, os.environ.get("BENCH_TREE", str(ROOT)))
# the configurations earlier docs sections were measured with, pinned so their scripts still run
# them (trainer fit's own defaults have moved on): the paper's model with the word vocabulary, the
# defaults of 2026-11-24; and with SentencePiece, the defaults of 2026-11-26 before attention
# (none of them ended by decoding the training sources for the shortlist: --no-shortlist)
AS_TYPED = ["--no-augment", "--keep-input-case"]
PAPER_WORD_2026_11_24 = ["--vocab", "word", "--attention", "none", "--hidden-dim", "512", "--emb-dim", "64",
                         "--batch-size", "64", "--batch-tokens", "0", "--lr", "2e-3", "--no-shortlist", *AS_TYPED]
PAPER_SUBWORD_2026_11_26 = ["--attention", "none", "--hidden-dim", "512", "--emb-dim", "64", "--batch-size", "32",
                            "--batch-tokens", "0", "--lr", "4e-3", "--no-shortlist", *AS_TYPED]
# the reference tasks: training, validation and test sets, and the languages
TASKS = {
    "tatoeba en-fr": dict(data=TATOEBA / "train.tsv", valid=TATOEBA / "valid.tsv", test=TATOEBA / "test.tsv", src="en", tgt="fr"),
    "multi30k en-fr": dict(data=MULTI30K / "train", valid=MULTI30K / "val", test=MULTI30K / "test_2016_flickr", src="en", tgt="fr"),
    "multi30k de-en": dict(data=MULTI30K / "train", valid=MULTI30K / "val", test=MULTI30K / "test_2016_flickr", src="de", tgt="en"),
}


def require_shared() -> None:
    if not TATOEBA.is_dir():
        sys.exit(f"benchmarks need the reference corpora at {SHARED} (../shared/data beside the clone)")


def machine() -> dict:
    import numpy
    import onnxruntime

    info = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "numpy": numpy.__version__, "onnxruntime": onnxruntime.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(cmd: list[str], tree: str | None = None, **kw) -> subprocess.CompletedProcess:
    """cmd in ROOT, or in another source tree (its code first on the path, and BENCH_TREE set)."""
    # the tree first, then whatever the caller had (e.g. a carried onnxruntime-gpu on a lent GPU machine)
    base = tree or str(ROOT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (base, os.environ.get("PYTHONPATH")) if p))
    if tree:
        env["BENCH_TREE"] = tree
    return subprocess.run(cmd, env=env, cwd=base, text=True, capture_output=True, check=True, **kw)


def emit(result: dict) -> None:
    """The last line of every script: one JSON object."""
    print(json.dumps(result, ensure_ascii=False))
