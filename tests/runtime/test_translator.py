import json
import os
import shutil
import subprocess
import threading
import warnings

import numpy as np
import pytest

from runtime import Translator
from runtime.model_format import FORMAT_VERSION, ModelFolderError
from runtime.translator import TruncationWarning
from trainer.data import load_corpus
from trainer.evaluate import torch_translate
from runtime.cores import usable_cores
from tests.conftest import PY, ROOT, run_env, torch_model

SENTENCES = [s for s, _ in load_corpus("builtin:test").pairs[:60]] + ["hello", "thank you", "the cat is black"]


@pytest.fixture(scope="module")
def translator(tiny_onnx):
    return Translator(tiny_onnx, device="cpu")


def test_round_trip_equals_pytorch_greedy(translator, tiny_ckpt):
    """train tiny -> export -> translate gives exactly the trainer's PyTorch greedy output."""
    model, codec = torch_model(tiny_ckpt)
    assert translator.translate(SENTENCES, batch_size=16) == torch_translate(model, codec, SENTENCES, batch_size=16)


def test_batched_equals_one_at_a_time(translator):
    batched = translator.translate(SENTENCES, batch_size=32)
    assert batched == [translator.translate([s])[0] for s in SENTENCES]
    assert translator.translate(SENTENCES, batch_size=7) == batched


def test_max_len_caps_output(translator):
    """max_len cuts greedy decoding after that many tokens: the capped output is the start of the
    uncapped one (this word-level model's tokens are words; it re-capitalises the first)."""
    text = "the children will not buy some white tables"
    full = translator.translate(text).split()
    assert len(full) > 3  # long enough for the cap to matter
    for cap in (1, 2, 3):
        capped = translator.translate([text] * 2, max_len=cap)
        assert capped[0] == capped[1] and capped[0].split() == full[:cap], (cap, capped, full)


def test_empty_unknown_and_long_input(translator):
    out = translator.translate(["", "   ", "zzyzx qwerty blorp", "hello"])
    assert out[:2] == ["", "   "] and out[2].strip() and out[3] == translator.translate(["hello"])[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        long = translator.translate(["the cat " * 200, "the dog " * 300], split_sentences=False)
    assert len([w for w in caught if issubclass(w.category, TruncationWarning)]) == 1
    assert "2 sentence(s)" in str(caught[0].message) and all(t.strip() for t in long)


def test_threads_share_one_translator(translator):
    expected = {s: translator.translate([s, SENTENCES[0]])[0] for s in SENTENCES[:24]}
    results, errors = {}, []

    def work(k):
        try:
            for s in SENTENCES[k::6][:4] + SENTENCES[:24][k::6]:
                if s in expected:
                    results.setdefault(s, set()).add(translator.translate([s, SENTENCES[0]])[0])
        except Exception as e:  # pragma: no cover - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and results
    assert all(v == {expected[s]} for s, v in results.items())


def _copy(src, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(src, dst)
    return dst


def test_tampered_missing_and_wrong_version(tiny_onnx, tmp_path):
    d = _copy(tiny_onnx, tmp_path)
    with open(d / "decoder.onnx", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01")
    with pytest.raises(ModelFolderError, match="decoder.onnx: sha256 does not match.*re-export"):
        Translator(d)
    shutil.rmtree(d)
    d = _copy(tiny_onnx, tmp_path)
    (d / "target_vocabulary.json").unlink()
    with pytest.raises(ModelFolderError, match="target_vocabulary.json: file is missing"):
        Translator(d)
    shutil.rmtree(d)
    d = _copy(tiny_onnx, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ModelFolderError, match=f"format version {FORMAT_VERSION + 1}.*upgrade the runtime"):
        Translator(d)
    (d / "config.json").write_text(json.dumps({**cfg, "format_version": 0}))
    with pytest.raises(ModelFolderError, match="format version 0.*re-export"):
        Translator(d)
    with pytest.raises(ModelFolderError, match="no model folder"):
        Translator(tmp_path / "nothing")


def test_explicit_cuda_without_provider_is_a_clear_error(tiny_onnx):
    from runtime.sessions import CUDA, DeviceError, available_providers

    if CUDA in available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        Translator(tiny_onnx, device="cuda")
    t = Translator(tiny_onnx, device="auto")
    assert t.device == "cpu" and t.notice is None  # a CPU build where nobody asked for CUDA: no notice


def test_cuda_library_preload_keeps_stdout_clean_and_names_what_failed(monkeypatch, capsys):
    """onnxruntime's preload_dlls prints its failures on stdout (the CLI's translations): they
    become the first failure, for the one-line error, and nothing reaches stdout."""
    from runtime import sessions

    def preload_dlls():
        print("Failed to load /site/nvidia/cudnn/lib/libcudnn.so.9: cannot open shared object file")
        print("Failed to load libcublas.so.13: cannot open shared object file")

    monkeypatch.setattr(sessions.ort, "preload_dlls", preload_dlls, raising=False)
    failed = sessions.load_cuda_libraries.__wrapped__()
    assert failed.startswith("Failed to load /site/nvidia/cudnn/lib/libcudnn.so.9:")
    assert capsys.readouterr().out == ""

    def missing_directory():
        raise RuntimeError("Invalid parameter of directory")

    monkeypatch.setattr(sessions.ort, "preload_dlls", missing_directory, raising=False)
    assert "Invalid parameter" in sessions.load_cuda_libraries.__wrapped__()


@pytest.mark.parametrize("folder, rows", [("tiny_onnx", False), ("tiny_onnx_int8", False), ("tiny_att_onnx", False),
                                          ("tiny_att_onnx_int8", False), ("tiny_att_onnx_sl", False),
                                          ("tiny_att_onnx_sl", True), ("tiny_att_onnx_fixed", False)])
def test_iobinding_path_on_cpu_matches_plain_run(folder, rows, request):
    """The IOBinding/OrtValue code that CUDA uses (the whole decoder state bound as OrtValues: with
    attention also the memory, its keys, the score bias and input feed; with a shortlist's rows the
    batch's output layer rows), run with the device set to cpu: only the CUDA provider itself is left
    untested on a machine without a GPU. rows: every batch through the decoder that takes the rows
    (the tiny model's shortlist holds its whole vocabulary, so its batches pick decoder.onnx else).
    A fixed shortlist's (format 8) Loop is stepped one run a step there, its candidates on the host."""
    from runtime.decode import pad_batch
    from runtime.sessions import DecoderSession, EncoderSession, FixedShortlist, OutputLayerSession, ShortlistDecoders

    plain = Translator(request.getfixturevalue(folder), device="cpu")
    bound = Translator(request.getfixturevalue(folder), device="cpu")
    output_layer = bound.encoder.output_layer
    fixed = isinstance(output_layer, FixedShortlist)
    if output_layer is not None and not fixed:
        plain.encoder.output_layer.whole_decoder = not rows
        output_layer = OutputLayerSession(output_layer.session, "cpu", output_layer.vocab_size, output_layer.shortlist,
                                          io_binding=True, whole_decoder=not rows)
    bound.encoder = EncoderSession(bound.encoder.session, "cpu", io_binding=True, output_layer=output_layer)
    bind = lambda decoder: DecoderSession(decoder.session, "cpu", io_binding=True)
    if isinstance(bound.decoder, ShortlistDecoders):
        bound.decoder = ShortlistDecoders(bind(bound.decoder.whole), bind(bound.decoder.rows))
    else:
        bound.decoder = bind(bound.decoder)
    state = bound.encoder(*pad_batch([bound.encode("the cat is black")[0], bound.encode("hello")[0]]))
    attention = {"memory", "keys", "score_bias", "input_feed"} if plain.config.attention == "luong" else set()
    assert set(state) == {"hidden", "cell"} | attention | ({"out_weight", "out_bias", "candidates"} if rows else set()) \
        | ({"candidates"} if fixed else set())
    assert all(type(x).__name__ == "OrtValue" for k, x in state.items() if not (fixed and k == "candidates"))  # the OrtValue path
    assert not (fixed and bound.decoder.multi_step)  # the Loop one run a step: its ids would cross to the host anyway
    assert bound.translate(SENTENCES) == plain.translate(SENTENCES)
    got = bound.translate(SENTENCES[:30], beam_size=3, n_best=2, return_scores=True)
    want = plain.translate(SENTENCES[:30], beam_size=3, n_best=2, return_scores=True)
    assert [[h.text for h in s] for s in got] == [[h.text for h in s] for s in want]
    assert np.allclose([h.score for s in got for h in s], [h.score for s in want for h in s], atol=1e-5)


@pytest.mark.gpu
def test_cuda_iobinding_matches_cpu(tiny_onnx):
    from runtime.sessions import CUDA, available_providers

    if CUDA not in available_providers():
        pytest.skip("no CUDAExecutionProvider (needs a GPU and onnxruntime-gpu)")
    gpu = Translator(tiny_onnx, device="cuda")
    assert gpu.device == "cuda"
    cpu = Translator(tiny_onnx, device="cpu")
    assert gpu.translate(SENTENCES) == cpu.translate(SENTENCES)
    got = gpu.translate(SENTENCES, beam_size=3, n_best=2, return_scores=True)
    want = cpu.translate(SENTENCES, beam_size=3, n_best=2, return_scores=True)
    assert [[h.text for h in s] for s in got] == [[h.text for h in s] for s in want]
    assert np.allclose([h.score for s in got for h in s], [h.score for s in want for h in s], atol=1e-4)


def test_int8_folder_translates(tiny_onnx_int8, tiny_onnx):
    """The int8 folder translates every sentence, mostly as fp32 does. Bound: int8 rounding moves a
    3-epoch model's near-tied tokens, so whole sentences can differ (0-16% of them measured over four
    training runs); a broken int8 graph agrees on next to none."""
    int8, fp32 = Translator(tiny_onnx_int8).translate(SENTENCES), Translator(tiny_onnx).translate(SENTENCES)
    assert len(int8) == len(SENTENCES) and all(o.strip() for o in int8)
    assert sum(a == b for a, b in zip(int8, fp32)) >= len(SENTENCES) // 2


SHARED_POOL_PROBE = """
import json, os, sys
import onnxruntime  # and numpy: their own threads (OpenBLAS's) come before the count
import runtime
from runtime import Translator

def threads():  # the process's OS threads, once those of joined Python threads are gone
    import time
    time.sleep(0.3)
    return len(os.listdir("/proc/self/task"))

folder, texts, shared = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "shared"
start = threads()
if shared:
    assert runtime.share_thread_pool(2)
translators = [Translator(folder, device="cpu", threads=2) for _ in range(2)]
made = threads() - start
other = Translator(folder, device="cpu", threads=1)  # in a shared process: the shared pool, with a notice
try:
    runtime.share_thread_pool(1)
    refused = None
except ValueError as e:
    refused = str(e)
print(json.dumps({"made": made, "notice": other.notice, "refused": refused,
                  "outputs": [t.translate(texts) for t in (*translators, other)]}))
"""


def _probe_pool(folder, shared: bool) -> dict:
    r = subprocess.run([PY, "-c", SHARED_POOL_PROBE, str(folder), json.dumps(SENTENCES[:20]), "shared" if shared else "own"],
                       capture_output=True, text=True, env=run_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or usable_cores() < 2, reason="counts Linux threads; needs 2 cores")
def test_share_thread_pool_gives_a_process_one_pool(tiny_att_onnx):
    """After runtime.share_thread_pool(2), the sessions of two Translators (encoder and decoder
    each) run on one pool: one worker thread made in all, against one per session without it; a
    Translator asking for other threads says they don't apply, another size is refused; the
    translations are the same either way."""
    own, shared = _probe_pool(tiny_att_onnx, False), _probe_pool(tiny_att_onnx, True)
    assert own["made"] == 4 and shared["made"] == 1, (own["made"], shared["made"])
    assert own["notice"] is None and "share one pool of 2 threads" in shared["notice"] and "threads 1 do not apply" in shared["notice"]
    assert shared["refused"] and "already" in shared["refused"]
    assert own["outputs"][0] == own["outputs"][2] == shared["outputs"][0] == shared["outputs"][1] == shared["outputs"][2]


def test_auto_device_falls_back_to_cpu_for_every_graph(tiny_att_onnx, monkeypatch):
    """device "auto" where the CUDA provider starts for one graph but not the next: every graph ends
    on the CPU (the first one's CUDA session remade), with one notice, and translates as a CPU
    Translator does."""
    import runtime.sessions as sessions

    expected = Translator(tiny_att_onnx, device="cpu").translate(SENTENCES[:10])
    made, real = [], sessions.make_session

    def make_session(graph, device, threads, spinning=True, weights=None):
        made.append((len(graph), device))
        if device == "cuda":
            if len(graph) == len((tiny_att_onnx / "decoder.onnx").read_bytes()):
                raise sessions.DeviceError("device cuda: onnxruntime could not start the CUDA provider (test)")
            return real(graph, "cpu", threads, spinning, weights)  # stands for a session that did start on CUDA
        return real(graph, device, threads, spinning, weights)

    monkeypatch.setattr(sessions, "resolve_device", lambda device: ("cuda", None))
    monkeypatch.setattr(sessions, "make_session", make_session)
    t = Translator(tiny_att_onnx, device="auto")
    assert t.device == "cpu" and t.encoder.device == t.decoder.device == "cpu"
    assert t.notice == "notice: device cuda: onnxruntime could not start the CUDA provider (test); running on CPU"
    sizes = {len((tiny_att_onnx / name).read_bytes()) for name in ("encoder.onnx", "decoder.onnx")}
    assert {size for size, device in made if device == "cpu"} == sizes  # the encoder's CUDA session remade
    assert t.translate(SENTENCES[:10]) == expected


def test_the_runtime_program_shares_its_pool_the_click_group_in_process_does_not(tiny_att_onnx):
    """`runtime translate` (the program: runtime.cli.main) puts its sessions on one pool, and numpy's
    OpenBLAS on one thread before numpy is imported; the same command invoked in-process (a
    CliRunner, someone's program) leaves the process's onnxruntime as it is, so that process's own
    sessions with pools of their own keep working."""
    from click.testing import CliRunner

    from runtime.cli import cli
    from runtime.sessions import shared_pool_threads

    probe = ("import atexit, os, sys, runtime.cli\n"
             "early = 'numpy' in sys.modules\n"
             "s = sys.modules  # runtime.sessions, imported by the program\n"
             "atexit.register(lambda: print('pool', s['runtime.sessions'].shared_pool_threads(),\n"
             "                              'blas', os.environ.get('OPENBLAS_NUM_THREADS'),\n"
             "                              'numpy before main', early, file=sys.stderr))\n"
             f"sys.argv = ['runtime', 'translate', '--model', {str(tiny_att_onnx)!r}, 'hello']\n"
             "runtime.cli.main()\n")
    env = run_env()
    env.pop("OPENBLAS_NUM_THREADS", None)
    r = subprocess.run([PY, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0 and r.stderr.strip() == "pool 0 blas 1 numpy before main False", r.stderr
    before = shared_pool_threads()
    result = CliRunner().invoke(cli, ["translate", "--model", str(tiny_att_onnx), "hello"])
    assert result.exit_code == 0 and result.output.strip() == r.stdout.strip()
    assert shared_pool_threads() == before
