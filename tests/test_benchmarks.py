"""Every benchmark script still runs: each one's --quick, to its closing JSON line. They measure;
these tests only keep them from breaking silently (the numbers are for docs/benchmarks.md)."""
import json
import subprocess

import pytest

from tests.conftest import PY, ROOT, needs_shared, run_env

# script -> the keys its closing JSON object must have (charts.py draws charts from stored results:
# nothing to measure; cuda_fidelity.py needs a GPU)
QUICK = {
    "segmenters.py": ["segmenters"],
    "robustness.py": ["results"],
    "quality.py": ["results", "curves"],
    "vocabulary.py": ["results"],
    "decode.py": ["speedup_int8_b1", "speedup_int8_b1_graphs_alone", "fidelity"],
    "train.py": ["speedup_train"],
    "teacher_forcing.py": ["results"],
    "distributed.py": ["tgt_tokens_per_s", "relative"],
    "big_corpus.py": ["cache_build"],
    "train_step.py": ["ms_per_step", "ratio"],
    "serve.py": ["results"],
}


def _quick(*args) -> dict:
    r = subprocess.run([PY, *args, "--quick"], capture_output=True, text=True, env=run_env(), cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("script", list(QUICK))
def test_benchmark_quick_runs(script):
    result = _quick(f"benchmarks/{script}")
    assert all(key in result for key in QUICK[script]) and "machine" in result, list(result)


@pytest.mark.slow
def test_cold_start_quick_runs(tiny_onnx):
    result = _quick("benchmarks/cold_start.py", "--model", str(tiny_onnx))
    assert result["cold_start_s"] and result["repeat"] == 3


@needs_shared
@pytest.mark.gpu
def test_cuda_fidelity_quick_runs(tiny_att_onnx):
    from runtime.sessions import CUDA, available_providers

    if CUDA not in available_providers():
        pytest.skip("no CUDAExecutionProvider (needs a GPU and onnxruntime-gpu)")
    assert _quick("benchmarks/cuda_fidelity.py", str(tiny_att_onnx))


@needs_shared
@pytest.mark.slow
def test_web_quick_runs(tiny_att_onnx):
    from tests.conftest import CHROMIUM

    if not (ROOT / "web" / "dist" / "app.js").is_file() or not __import__("os").path.exists(CHROMIUM):
        pytest.skip("needs web/dist (npm ci --prefix web && npm run build --prefix web) and chromium; CI has both")
    result = _quick("benchmarks/web.py", "--fp32", str(tiny_att_onnx))
    assert result["results"]["page fp32"]["page_mb"] > 14 and result["results"]["python fp32"]["b1_sent_per_s"] > 0


@needs_shared
@pytest.mark.slow
def test_shortlist_quick_runs(tiny_att_run):
    result = _quick("benchmarks/shortlist.py", "--checkpoint", str(tiny_att_run / "checkpoint.pth"))
    assert set(result["results"]) == {"whole vocabulary", "1000+100"} and result["sentences"] == 100
    short = result["results"]["1000+100"]
    assert set(short["b1"]) >= {"bleu", "identical", "passes"} and 0 <= short["b32"]["identical"] <= 1


@needs_shared
@pytest.mark.slow
def test_profile_step_quick_runs_and_its_groups_add_up_to_the_step(tiny_att_onnx):
    result = _quick("benchmarks/profile_step.py", "--fp32", str(tiny_att_onnx))
    for key in ("fp32 b1", "fp32 b32"):
        row = result["profile"][key]
        assert abs(sum(row["groups_us"].values()) - row["us_per_step"]) < 1.0, row
        assert row["groups_us"]["LSTM"] > 0 and row["groups_us"]["output projection"] > 0, row
    assert result["profile"]["roofline fp32"]["memory_bandwidth_gb_s"] > 0


@needs_shared
@pytest.mark.slow
def test_shortlist_coverage_quick_runs(tiny_att_run, tiny_att_onnx):
    result = _quick("benchmarks/shortlist_coverage.py", "--checkpoint", str(tiny_att_run / "checkpoint.pth"),
                    "--folder", str(tiny_att_onnx))
    assert len(result["results"]) == 14 and result["test_sentences"] <= 200
    assert all(0 <= r["coverage_b1"] <= 1 and r["candidates_b1"] > 0 for r in result["results"].values())


@needs_shared
@pytest.mark.slow
def test_step_parts_quick_runs(tiny_att_run, tmp_path):
    import numpy as np

    from tests.runtime.test_shortlist import _fixed_folder

    folder = _fixed_folder(tiny_att_run, tmp_path / "fixed", np.arange(4, 60))
    result = _quick("benchmarks/step_parts.py", "--folder", str(folder), "--columns", "100,200")
    assert set(result["nodes"]) == {"decoder.onnx", "decoder_shortlist.onnx"}
    for r in result["nodes"].values():
        assert r["step_us"] > 0 and any(name.startswith("DynamicQuantizeLSTM") or name.startswith("LSTM")
                                        for name in r["per_node_us"]), r
    assert set(result["kernel_int8_b1_us"]) == {"100", "200"}
    assert set(result["translate"]) == {"b1", "b32", "b128"} and 0 <= result["translate"]["b1"]["identical"] <= 1
