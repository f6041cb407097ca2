"""Thin onnxruntime session wrappers for the encoder and the one-step decoder.

On CPU they exchange numpy arrays. On CUDA the decoder state (hidden, cell; with attention also
the input feed, the encoder's memory, keys and score bias; the batch's output layer rows) stays on
the GPU as OrtValues through IOBinding; only token ids (and, for beam search, log-probabilities)
cross to the host each step.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import threading
from pathlib import Path

import numpy as np

try:
    import onnxruntime as ort
except ImportError:  # a plain `pip install .` brings neither build; the user picks one
    ort = None

from runtime.model_format import weights_file
from runtime.shortlist import rows_pay
from runtime.state import ENCODER_INPUTS, LOG_PROBS_WIDTH, MAX_STEPS, OUTPUT_LAYER, STEP_IDS, select_rows

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ALL_COLUMNS = np.array([np.iinfo(np.int64).max], dtype=np.int64)  # a format 8 decoder's log_probs_width: every column
# onnxruntime's CUDA provider multiplies float32 in TF32 (10-bit mantissa) by default on Ampere and
# later; full float32 keeps CUDA's translations those of the CPU and of the exported checkpoint
# (near-ties flip otherwise). The small LSTM steps are launch-bound, so TF32 would save little.
CUDA_OPTIONS = {"use_tf32": "0"}


class DeviceError(Exception):
    """The requested device can't be used."""


NO_ORT = "onnxruntime is not installed: pip install 'seq2seq-edge[cpu]' (or '[gpu]' for onnxruntime-gpu)"


def available_providers() -> list[str]:
    if ort is None:
        raise DeviceError(NO_ORT)
    return ort.get_available_providers()


def resolve_device(device: str) -> tuple[str, str | None]:
    """'auto' | 'cpu' | 'cuda' -> ('cpu' | 'cuda', a one-line notice or None).

    'auto' on a CPU-only build is simply the CPU, without a notice: nobody asked for CUDA.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {device!r}: use auto, cpu or cuda")
    has_cuda = CUDA in available_providers()
    if device == "cuda" and not has_cuda:
        raise DeviceError(
            "device cuda: this onnxruntime has no CUDAExecutionProvider; install onnxruntime-gpu "
            "(see README: GPU install) or use --device cpu"
        )
    if device == "auto":
        return ("cuda" if has_cuda else "cpu"), None
    return device, None


@functools.cache
def load_cuda_libraries() -> str:
    """Loads the CUDA and cuDNN libraries of the nvidia-* pip packages (onnxruntime-gpu[cuda,cudnn])
    into the process, once: onnxruntime finds them only once loaded, which importing torch does for
    a trainer but nothing does on a torch-free deployment. -> what failed to load ('' if nothing).
    onnxruntime prints its complaints on stdout, the CLI's output, so they are kept for our error."""
    if not hasattr(ort, "preload_dlls"):  # onnxruntime < 1.21: the libraries come from the system paths
        return ""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            ort.preload_dlls()
        except (OSError, RuntimeError) as e:
            print(f"Failed to load the CUDA libraries: {e}")
    return next((line.strip() for line in printed.getvalue().splitlines() if line.startswith("Failed to load")), "")


# a folder nothing can be in: a path under the null device, itself no directory ("/dev/null/...":
# ENOTDIR on POSIX; Windows reserves the name "nul" in every folder). Unlike a fresh empty
# directory it needs no tempfile (whose import and mkdtemp cost ~8 ms of a cold start) and no clean-up.
NO_FILES_FOLDER = os.path.join(os.devnull, "no-external-data")

_shared_pool: int | None = None  # the size of the process's shared pool, once made (0: all cores)
_shared_pool_lock = threading.Lock()


def share_thread_pool(threads: int | None = None) -> bool:
    """Makes every onnxruntime session this process creates from now on run on one intra-op thread
    pool of `threads` (None: all cores) instead of a pool each. -> False where this onnxruntime
    can't (< 1.22): sessions keep pools of their own.

    A pool per session leaves two pools' workers on the same cores; sharing one, the 20-minute
    model decodes ~1.3x faster on 2 cores at batch 1 and 32 (docs/benchmarks.md). It is the
    process's setting, not a Translator's: afterwards onnxruntime refuses any session of the
    process that asks for a pool of its own (your own onnxruntime code must then set
    `use_per_session_threads = False`), and a Translator's `threads` and `spinning` no longer
    apply. So it is for a process that is ours to configure: the `runtime` program calls it; a Python
    program calls it once, before its first Translator. A second call with another size is a
    ValueError."""
    global _shared_pool
    if ort is None:
        raise DeviceError(NO_ORT)
    if not hasattr(ort, "set_global_thread_pool_sizes"):
        return False
    size = threads or 0
    with _shared_pool_lock:
        if _shared_pool is None:
            ort.set_global_thread_pool_sizes(size, 1)
            _shared_pool = size
        elif _shared_pool != size:
            raise ValueError(f"this process's sessions share a pool of {_shared_pool or 'all cores'} threads "
                             f"already, not {threads or 'all cores'}")
    return True


def shared_pool_threads() -> int | None:
    """None when sessions have pools of their own, else the shared pool's size (0: all cores)."""
    return _shared_pool


def make_session(model: bytes | os.PathLike | str, device: str, threads: int | None,
                 spinning: bool = True, weights: dict[str, np.ndarray] | None = None) -> ort.InferenceSession:
    """A session over the graph's bytes (as hashed by the folder check) or a path (then also the
    weights file beside it, if there is one).

    weights: the initializers a format 6 graph keeps in its weights file, as runtime.weights.read_weights
    views them in the verified bytes. onnxruntime copies each into the session once, checking its name,
    shape and type against the graph's (AddExternalInitializers; the bytes may go afterwards).
    Any other external data is refused: it would be read from outside the sha256 list. onnxruntime
    resolves it from a folder we point at NO_FILES_FOLDER, so any reference the weights do not cover fails.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 4  # failures reach the user as our one-line errors, not as onnxruntime's log
    if _shared_pool is not None:  # see share_thread_pool: every session of the process uses it
        opts.use_per_session_threads = False
    else:
        if not spinning:  # workers sleep between operators (see Translator)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
    providers = [(CUDA, CUDA_OPTIONS), CPU] if device == "cuda" else [CPU]
    failed = load_cuda_libraries() if device == "cuda" else ""
    if not isinstance(model, bytes):
        path = Path(model)
        model, beside = path.read_bytes(), path.with_name(weights_file(path.name))
        if weights is None and beside.is_file():
            from runtime.weights import read_weights

            weights = read_weights(beside.read_bytes())
    opts.add_session_config_entry("session.model_external_initializers_file_folder_path", NO_FILES_FOLDER)
    add_weights(opts, weights)
    session = ort.InferenceSession(model, sess_options=opts, providers=providers)
    if device == "cuda" and CUDA not in session.get_providers():
        # onnxruntime-gpu falls back to CPU quietly when the CUDA libraries don't load
        raise DeviceError("device cuda: onnxruntime could not start the CUDA provider ("
                          + (failed.split(":")[0] if failed else "CUDA/cuDNN libraries missing?") + ")")
    return session


def add_weights(opts: ort.SessionOptions, weights: dict[str, np.ndarray] | None) -> None:
    """A format 6 graph's initializers (runtime.weights.read_weights' views) for the session these
    options make: onnxruntime copies each in once, checking name, shape and type against the graph's."""
    if weights:
        opts.add_external_initializers(list(weights), [ort.OrtValue.ortvalue_from_numpy(a) for a in weights.values()])


def check_signature(session: ort.InferenceSession, expected: tuple[dict, dict]) -> str | None:
    """-> None if the session's inputs and outputs have the expected names, types and fixed
    sizes (see model_format.graph_signatures), else what differs, in a few words."""
    for kind, args, want in (("inputs", session.get_inputs(), expected[0]), ("outputs", session.get_outputs(), expected[1])):
        got = {a.name: a for a in args}
        if set(got) != set(want):
            return f"{kind} {sorted(got)}, expected {sorted(want)}"
        for name, (dtype, shape) in want.items():
            arg = got[name]
            if arg.type != dtype:
                return f"{name} is {arg.type}, expected {dtype}"
            fixed_mismatch = any(isinstance(g, int) and w is not None and g != w for g, w in zip(arg.shape, shape))
            if len(arg.shape) != len(shape) or fixed_mismatch:
                return f"{name} has shape {arg.shape}, expected {[w if w is not None else '?' for w in shape]}"
    return None


State = dict  # name -> array: numpy arrays on CPU, OrtValues on CUDA (see runtime/state.py)


class _Session:
    """io_binding: run through IOBinding with OrtValues on `device` (always on CUDA, where the
    state must stay on the GPU; on the CPU only when asked, so the CPU test suite runs this path
    too and only the CUDA provider itself goes untested without a GPU)."""

    def __init__(self, session: ort.InferenceSession, device: str, io_binding: bool | None = None):
        self.session, self.device = session, device
        self.bind = device != "cpu" if io_binding is None else io_binding
        # InferenceSession.run checks the feeds in Python before it calls its C++ session: ~7 us a
        # call, 3.5% of an int8 decoder step at batch 1. Ours are the graph's own inputs, checked at
        # load (check_signature), so the C++ run is called directly where this onnxruntime has it.
        inner = getattr(session, "_sess", None)
        self.run = (lambda names, feeds: inner.run(names, feeds, None)) if hasattr(inner, "run") else session.run

    def _on_device(self, array: np.ndarray):
        """A host array as this session's state: itself, or an OrtValue on the device."""
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, 0) if self.bind else array


class OutputLayerSession(_Session):
    """output_layer.onnx: target ids (K,) -> the output projection's rows for them, out_weight (H, K)
    and out_bias (K,), for the decoder that takes them as inputs. Once per batch: the shortlist's
    candidates for the batch's source ids, or (a format 4 folder without its shortlist) the whole
    vocabulary, gathered once and kept.

    whole_decoder: the folder also has a decoder holding the whole projection (format 5); a batch
    whose candidates are too many for the rows to pay (runtime.shortlist.rows_pay; int8: the
    folder's quantization) then gets none, and runs on that decoder."""

    def __init__(self, session: ort.InferenceSession, device: str, vocab_size: int, shortlist=None,
                 io_binding: bool | None = None, whole_decoder: bool = False, int8: bool = False):
        super().__init__(session, device, io_binding)
        self.vocab_size, self.shortlist, self._full = vocab_size, shortlist, None
        self.whole_decoder, self.int8 = whole_decoder, int8

    def rows(self, ids: np.ndarray) -> State:
        """ids (K,) int64, sorted -> out_weight, out_bias, candidates (as the decoder takes them)."""
        feeds = {"candidates": ids}
        if not self.bind:
            weight, bias = self.session.run(["out_weight", "out_bias"], feeds)
        else:
            binding = self.session.io_binding()
            binding.bind_cpu_input("candidates", ids)
            for name in ("out_weight", "out_bias"):
                binding.bind_output(name, self.device)
            self.session.run_with_iobinding(binding)
            weight, bias = binding.get_outputs()
        return dict(zip(OUTPUT_LAYER, (weight, bias, self._on_device(ids))))

    def __call__(self, src_ids: np.ndarray) -> State:
        """src_ids (B, S) -> the batch's rows, or {} (the whole decoder's batch)."""
        if self.shortlist is not None:
            ids = self.shortlist.candidates(src_ids)
            if self.whole_decoder and not rows_pay(len(ids), len(src_ids), self.vocab_size, self.int8):
                return {}
            return self.rows(ids)
        if self._full is None:  # two threads may both build it: the same rows, no harm
            self._full = self.rows(np.arange(self.vocab_size, dtype=np.int64))
        return self._full


class FixedShortlist:
    """A fixed shortlist's candidates (format 7: no per-source lists), the same for every batch:
    decoder_shortlist.onnx holds their rows and maps its columns to target ids itself, and every
    batch takes it, so the state carries them only for beam search (log_probs column -> target id)."""

    def __init__(self, candidates: np.ndarray):
        self.state = {"candidates": candidates}  # (K,) int64, sorted; on the host, as beam search reads it

    def __call__(self, src_ids: np.ndarray) -> State:
        return self.state


class EncoderSession(_Session):
    def __init__(self, session: ort.InferenceSession, device: str, io_binding: bool | None = None,
                 output_layer: OutputLayerSession | FixedShortlist | None = None):
        super().__init__(session, device, io_binding)
        self.outputs = [o.name for o in session.get_outputs()]  # hidden, cell (, memory ...), as checked
        self.output_layer = output_layer  # format 4 folders

    def __call__(self, src_ids: np.ndarray, src_lengths: np.ndarray) -> State:
        """src_ids (B, S) int64, src_lengths (B,) int64 -> the decoder's initial state: hidden and
        cell (L, B, H); with attention also memory (B, S, H), keys (B, H, S), score_bias (B, 1, S) and
        input_feed (B, H) zeros (a format 3 graph: src_lengths instead of keys and bias); the batch's
        output layer rows (format 4) or a fixed shortlist's candidates (7). On CUDA all of it is put
        on the GPU here, once per batch (but a fixed shortlist's candidates: the host's)."""
        names = self.outputs
        inputs = {ENCODER_INPUTS[0]: src_ids, ENCODER_INPUTS[1]: src_lengths}
        if not self.bind:
            state = dict(zip(names, self.run(names, inputs)))
        else:
            binding = self.session.io_binding()
            for name, value in inputs.items():
                binding.bind_cpu_input(name, value)
            for name in names:
                binding.bind_output(name, self.device)
            self.session.run_with_iobinding(binding)
            state = dict(zip(names, binding.get_outputs()))
        if "memory" in state:
            hidden_dim = state["hidden"].shape[-1] if not self.bind else state["hidden"].shape()[-1]
            if "score_bias" not in state:  # format 3: the decoder masks padding from the lengths
                state["src_lengths"] = self._on_device(src_lengths)
            state["input_feed"] = self._on_device(np.zeros((len(src_ids), hidden_dim), dtype=np.float32))
        if self.output_layer is not None:
            state.update(self.output_layer(src_ids))
        return state


class DecoderSession(_Session):
    def __init__(self, session: ort.InferenceSession, device: str, io_binding: bool | None = None):
        super().__init__(session, device, io_binding)
        self.state_inputs = [i.name for i in session.get_inputs() if i.name != "prev_ids"]
        # graph order (binding order is the order of get_outputs()); a format 1 graph's `logits`
        # is left out: onnxruntime returns bound / requested outputs only
        self.outputs = [o.name for o in session.get_outputs() if o.name != "logits"]
        self._greedy_outputs = [n for n in self.outputs if n not in ("log_probs", STEP_IDS)]
        self.compacts = not self.bind  # select() goes through the host when the state is on a device
        self._state_outputs = [(n, n[len("new_"):]) for n in self.outputs if n.startswith("new_")]
        # a format 8 fixed shortlist's decoder runs several steps in one call (greedy, batch 1; on the
        # CPU path: on a device the ids would cross to the host anyway, and it is untried on CUDA)
        self.loop = STEP_IDS in self.outputs
        self.multi_step = self.loop and not self.bind

    def steps(self, prev_ids: np.ndarray, state: State, max_steps: int) -> list[int]:
        """Greedy search in one run (multi_step decoders, batch 1): prev_ids (1,) -> the ids of up to
        max_steps steps, each fed the last one's, up to and with the first <eos>."""
        feeds = {"prev_ids": prev_ids, MAX_STEPS: np.array(max_steps, dtype=np.int64)}
        for name in self.state_inputs:
            feeds[name] = state[name]
        return self.run([STEP_IDS], feeds)[0][:, 0].tolist()

    def step(self, prev_ids: np.ndarray, state: State, want_log_probs: bool = False):
        """prev_ids (B,) int64 -> (next_ids (B,) int64, log_probs (B, K) float32 or None, new state).
        The new_* outputs replace their parts of the state; memory, keys and the rest ride along.
        (A format 8 decoder, a Loop, runs one step: its default; its log_probs are asked for by width.)"""
        if not self.bind:  # one dict, filled in place: at batch 1 the Python around a run is ~7 us of ~125
            feeds = {"prev_ids": prev_ids}
            for name in self.state_inputs:
                feeds[name] = state[name]
            if want_log_probs and self.loop:  # format 8: (B, 0) unless asked
                feeds[LOG_PROBS_WIDTH] = ALL_COLUMNS
            names = self.outputs if want_log_probs else self._greedy_outputs
            outs = dict(zip(names, self.run(names, feeds)))
        elif self.loop and want_log_probs:
            # format 8's log_probs_width is an input with a default, which IOBinding cannot bind (it knows
            # only the listed inputs): the feeds as OrtValues instead; the outputs stay where onnxruntime
            # put them (the state on the device), next_ids and log_probs are brought to the host
            feeds = {"prev_ids": ort.OrtValue.ortvalue_from_numpy(prev_ids),
                     LOG_PROBS_WIDTH: ort.OrtValue.ortvalue_from_numpy(ALL_COLUMNS)}
            for name in self.state_inputs:
                feeds[name] = state[name]
            outs = {n: v.numpy() if n in ("next_ids", "log_probs") else v
                    for n, v in zip(self.outputs, self.session.run_with_ort_values(self.outputs, feeds))}
        else:
            binding = self.session.io_binding()
            binding.bind_cpu_input("prev_ids", prev_ids)
            for name in self.state_inputs:
                binding.bind_ortvalue_input(name, state[name])
            # greedy copies only next_ids (B int64) to the host; beam search also needs log_probs
            for name in self.outputs:
                host = name == "next_ids" or (name == "log_probs" and want_log_probs)
                binding.bind_output(name, "cpu" if host else self.device)
            self.session.run_with_iobinding(binding)
            outs = {n: v.numpy() if n in ("next_ids", "log_probs") else v
                    for n, v in zip(self.outputs, binding.get_outputs())}
        new_state = state.copy()
        for output, part in self._state_outputs:
            new_state[part] = outs[output]
        log_probs = (outs["log_probs"][-1] if self.loop else outs["log_probs"]) if want_log_probs else None
        return outs["next_ids"], log_probs, new_state

    def select(self, state: State, rows: np.ndarray, same_sources: bool = False) -> State:
        """Reorders / subsets the batch rows of the state (beam search); see runtime/state.py."""
        if not self.bind:
            return select_rows(state, rows, same_sources, lambda x, axis, r: np.take(x, r, axis=axis))
        # a gather on the host: beam search already brings log-probs over each step, and the
        # recurrent state is small next to them ((L, B, H) against (B, V)); the memory is
        # gathered once per batch, when beam search first spreads each sentence over its beams
        return select_rows(state, rows, same_sources,
                           lambda x, axis, r: self._on_device(np.take(x.numpy(), r, axis=axis)))


class ShortlistDecoders:
    """A format 5 shortlist folder's two decoders, as one: a batch whose state carries its output
    layer rows (the encoder gave it them: OutputLayerSession) steps through decoder_shortlist.onnx,
    any other through decoder.onnx and its whole, prepacked projection."""

    def __init__(self, whole: DecoderSession, rows: DecoderSession):
        self.whole, self.rows = whole, rows
        self.compacts = whole.compacts

    def step(self, prev_ids: np.ndarray, state: State, want_log_probs: bool = False):
        return (self.rows if "candidates" in state else self.whole).step(prev_ids, state, want_log_probs)

    def select(self, state: State, rows: np.ndarray, same_sources: bool = False) -> State:
        return self.whole.select(state, rows, same_sources)
