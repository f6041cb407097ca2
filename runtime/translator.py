"""`Translator`: load a model folder once, translate sentences or a stream of lines (thread-safe)."""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from runtime.background import Background
from runtime.model_format import (
    DECODER_FILE, DECODER_SHORTLIST_FILE, ENCODER_FILE, FIXED_CANDIDATES, MAX_BEAM, OUTPUT_LAYER_FILE, REEXPORT_HINT,
    SHORTLIST_FILE,
    SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, WEIGHTS_FILE_VERSION, ModelFolderError, graph_signatures, load_tokenizer,
    fixed_shortlist, open_folder, parse_json, rows_decoder_file, weights_file,
)
from runtime.pipeline import TextCodec, translate_texts
from runtime.prepare import prepare_source
from runtime.state import OUTPUT_LAYER
from runtime.tokenizer import SENTENCEPIECE
from runtime.vocab import EOS_ID, SOS_ID, Vocab


class TruncationWarning(UserWarning):
    """Some input was longer than the model's maximum source length and was cut."""


@dataclass
class Hypothesis:
    text: str
    score: float  # sum of token log-probabilities (<eos> included), divided by length ** alpha


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_threads(threads) -> tuple[int | None, str | None]:
    """None (all cores) or a positive int, capped at the usable cores -> (threads, notice or None).
    More threads than cores makes onnxruntime's spinning workers fight over them: decoding crawls."""
    from runtime.cores import usable_cores

    if threads is None:
        return None, None
    threads = _positive_int("threads", threads)
    cores = usable_cores()
    if threads > cores:
        return cores, f"threads {threads} capped at the {cores} usable cores"
    return threads, None


def check_decoding(beam_size, n_best, length_penalty, max_len, batch_size) -> None:
    """The ranges the CLI enforces, for the Python API too (ValueError names the argument)."""
    _positive_int("beam_size", beam_size)
    if beam_size > MAX_BEAM:
        raise ValueError(f"beam_size {beam_size} is more than the {MAX_BEAM} this runtime searches with")
    _positive_int("n_best", n_best)
    _positive_int("batch_size", batch_size)
    if max_len is not None:
        _positive_int("max_len", max_len)
    if n_best > beam_size:
        raise ValueError(f"n_best {n_best} is larger than beam_size {beam_size}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not math.isfinite(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}")


def _shared_pool_notice(threads: int | None) -> str | None:
    """In a process whose sessions share one pool (runtime.share_thread_pool), threads asked for
    that differ from its size do not apply: say so."""
    from runtime.sessions import shared_pool_threads

    shared = shared_pool_threads()
    if shared is None or threads is None or threads == shared:
        return None
    return (f"notice: this process's sessions share one pool of {shared or 'all cores'} threads "
            f"(runtime.share_thread_pool); threads {threads} do not apply")


class Translator:
    """Translates with an exported model folder on onnxruntime.

    >>> Translator("artifacts/onnx").translate("hello")
    'Bonjour'
    """

    def __init__(self, model_dir: str | os.PathLike = "artifacts/onnx", device: str = "auto", threads: int | None = None,
                 *, spinning: bool = True, shortlist: bool = True, opened: tuple | None = None):
        """spinning=False: onnxruntime's worker threads sleep between operators instead of spin-waiting
        (its `session.intra_op.allow_spinning`). Spinning is faster one sentence at a time; without
        it batches decode faster and other work on the same cores (a server's requests) gets them
        (docs/benchmarks.md, "Serving").

        shortlist=False: project onto the whole target vocabulary at every step even when the folder
        has a shortlist (which restricts it to the target ids a batch's source ids may need).
        opened: what runtime.model_format.open_folder(model_dir, shortlist=shortlist) returned, when the
        caller read the folder already (the CLI does, while onnxruntime is imported)."""
        from runtime.sessions import (DecoderSession, EncoderSession, FixedShortlist, OutputLayerSession,
                                      ShortlistDecoders, load_cuda_libraries, resolve_device)

        threads, self.notice = check_threads(threads)
        self.notice = self.notice or _shared_pool_notice(threads)
        self._requested_device = device
        self.model_dir = Path(model_dir)
        # format version, field types, bounded sizes and the sha256 of every file; the bytes kept
        # are the ones hashed
        self.config, data = opened if opened is not None else open_folder(self.model_dir, shortlist=shortlist)
        self.device, device_notice = resolve_device(device)
        self.notice = self.notice or device_notice
        # the graphs become sessions side by side, while the vocabularies load: onnxruntime parses
        # and optimizes a graph without holding the GIL (~20 ms of a cold start, docs/benchmarks.md)
        names = list(graph_signatures(self.config))
        # a fixed shortlist (format 7): every batch takes its decoder, the same candidates for all
        fixed_file = DECODER_SHORTLIST_FILE if shortlist and fixed_shortlist(self.config) else None
        if not shortlist and DECODER_SHORTLIST_FILE in names:  # format 5: decoder.onnx alone scores the
            names = [n for n in names if n not in (DECODER_SHORTLIST_FILE, OUTPUT_LAYER_FILE)]  # whole vocabulary
        elif fixed_file:  # decoder.onnx is --no-shortlist's only: no session of it (~15 ms of a cold start)
            names = [n for n in names if n != DECODER_FILE]

        def make(group: list[str], graphs: dict) -> dict:
            return {name: self._session(graphs, name, threads, spinning) for name in group}

        groups = [[name] for name in names]
        if self.device == "cuda":  # once, here: it redirects stdout, which is not for two threads at once;
            load_cuda_libraries()  # and CUDA sessions one after the other, as before (side by side is untried on a GPU)
            groups = [names]
        pending = [Background(make, group, data) for group in groups]
        try:
            self.tokenizer = load_tokenizer(self.model_dir, self.config, data)
            self.src_vocab = self._vocab(data, SOURCE_VOCAB_FILE, self.config.src_vocab_size, "src")
            self.tgt_vocab = self._vocab(data, TARGET_VOCAB_FILE, self.config.tgt_vocab_size, "tgt")
            self.shortlist = self._shortlist(data) if shortlist and self.config.shortlist and SHORTLIST_FILE in data else None
            # format 8: a fixed shortlist's candidates from its decoder's weights file (shortlist.npz unread)
            fixed_ids = self._fixed_candidates(data) if fixed_file and self.shortlist is None else None
        finally:  # no session is still being made once this returns or raises
            for job in pending:
                job.wait()
        made = {name: made for job in pending for name, made in job.result().items()}
        sessions = self._on_one_device(made, data, threads, spinning)
        del data
        self._check_graphs(sessions)
        # the decoder that takes the output layer's rows: decoder.onnx itself in a format 4 folder
        rows_file = rows_decoder_file(self.config) if OUTPUT_LAYER_FILE in sessions else None
        whole = rows_file != DECODER_FILE  # decoder.onnx holds the whole projection
        output_layer = None
        if rows_file:
            output_layer = OutputLayerSession(sessions[OUTPUT_LAYER_FILE], self.device, self.config.tgt_vocab_size,
                                              self.shortlist, whole_decoder=whole,
                                              int8=self.config.quantization == "int8")
        elif fixed_file:  # its candidates ride in the state for beam search (log_probs column -> id)
            output_layer = FixedShortlist(self.shortlist.always_ids() if self.shortlist else fixed_ids)
        self.encoder = EncoderSession(sessions[ENCODER_FILE], self.device, output_layer=output_layer)
        decoders = {name: DecoderSession(sessions[name], self.device) for name in (DECODER_FILE, rows_file, fixed_file)
                    if name in sessions}
        self.decoder = decoders[fixed_file or DECODER_FILE]
        if rows_file and rows_file != DECODER_FILE:  # format 5: per batch, the rows or the whole projection
            self.decoder = ShortlistDecoders(self.decoder, decoders[rows_file])
        cfg = self.config
        self.codec = TextCodec(self.tokenizer, self.src_vocab, self.tgt_vocab, cfg.reverse_source, cfg.max_source_len,
                               cfg.text)
        self._probe(decoders, rows_file, output_layer if fixed_file else None)

    def _session(self, data: dict, name: str, threads: int | None, spinning: bool, device: str | None = None):
        """-> (an onnxruntime session over the graph's verified bytes (and, format 6, its weights
        file's) on `device` (self.device), the DeviceError that made an "auto" CUDA session fall
        back to the CPU, or None). A graph onnxruntime refuses is the folder's fault, named in one
        line. Runs in a worker thread: changes nothing on self."""
        from runtime.sessions import DeviceError, make_session
        from runtime.weights import WeightsFileError, read_weights

        device = device or self.device
        if name == OUTPUT_LAYER_FILE:  # one gather per batch: a pool of its own would only spin beside the
            threads = 1                # decoder's after each (where the process shares one, it is that one)
        weights = None
        if self.config.format_version >= WEIGHTS_FILE_VERSION:
            try:
                weights = read_weights(data[weights_file(name)])
            except WeightsFileError as e:
                raise ModelFolderError(f"{self.model_dir / weights_file(name)}: {e}; {REEXPORT_HINT}") from None
        try:
            try:
                return make_session(data[name], device, threads, spinning, weights), None
            except DeviceError as e:
                if self._requested_device != "auto":
                    raise
                return make_session(data[name], "cpu", threads, spinning, weights), e
        except DeviceError:
            raise
        except Exception as e:  # onnxruntime raises its own exception types for a bad graph
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            if "external data" in why.lower():
                why = ("it refers to external data files, which a model folder may not use" if weights is None else
                       f"it refers to external data that {weights_file(name)} does not hold")
            raise ModelFolderError(f"{self.model_dir / name}: onnxruntime cannot load it ({why[:200]}); "
                                   f"{REEXPORT_HINT}") from None

    def _on_one_device(self, made: dict, data: dict, threads: int | None, spinning: bool) -> dict:
        """made: name -> (session, fallback). With device "auto", a CUDA provider that failed to
        start for any graph puts every graph on the CPU (a session that did start on CUDA, for a
        graph made before the failing one, is remade)."""
        failed = next((why for _, why in made.values() if why is not None), None)
        if failed is None:
            return {name: session for name, (session, _) in made.items()}
        self.device, self.notice = "cpu", f"notice: {failed}; running on CPU"
        return {name: session if why is not None else self._session(data, name, threads, spinning, "cpu")[0]
                for name, (session, why) in made.items()}

    def _shortlist(self, data: dict):
        from runtime.shortlist import Shortlist, ShortlistError

        try:
            return Shortlist.from_bytes(data[SHORTLIST_FILE], self.config.src_vocab_size, self.config.tgt_vocab_size)
        except ShortlistError as e:
            raise ModelFolderError(f"{self.model_dir / SHORTLIST_FILE}: {e}; {REEXPORT_HINT}") from None

    def _fixed_candidates(self, data: dict) -> np.ndarray:
        """A format 8 fixed shortlist's candidates: its decoder's own constant, in its weights file."""
        from runtime.weights import WeightsFileError, read_weights

        name = weights_file(DECODER_SHORTLIST_FILE)
        try:
            ids = read_weights(data[name]).get(FIXED_CANDIDATES)
        except WeightsFileError as e:
            raise ModelFolderError(f"{self.model_dir / name}: {e}; {REEXPORT_HINT}") from None
        if ids is None or ids.dtype != np.int64 or ids.ndim != 1 or not len(ids) or (np.diff(ids) <= 0).any() \
                or ids[0] < 0 or ids[-1] >= self.config.tgt_vocab_size:
            raise ModelFolderError(f"{self.model_dir / name}: no {FIXED_CANDIDATES} of sorted target ids under "
                                   f"{self.config.tgt_vocab_size}; {REEXPORT_HINT}")
        return ids

    def _json(self, data: dict, name: str):
        return parse_json(self.model_dir, name, data[name])

    def _vocab(self, data: dict, name: str, size: int, side: str) -> Vocab:
        where = self.model_dir / name
        itos = self._json(data, name)
        pieces = self.tokenizer.pieces(side) if self.tokenizer.kind == SENTENCEPIECE else None
        try:  # the model's own pieces when the file lists exactly them (checked as the model loaded)
            vocab = Vocab.of_pieces(pieces) if pieces is not None and itos == pieces else Vocab(itos)
        except ValueError as e:
            raise ModelFolderError(f"{where}: {e}; {REEXPORT_HINT}") from None
        if len(vocab) != size:
            raise ModelFolderError(f"{where}: {len(vocab)} tokens, config.json says {size}; {REEXPORT_HINT}")
        if pieces is not None and vocab.itos != pieces:
            raise ModelFolderError(f"{where}: not the pieces of the {side} SentencePiece model, in its id order "
                                   f"(vocabulary and model mismatched); {REEXPORT_HINT}")
        return vocab

    def _check_graphs(self, sessions: dict) -> None:
        from runtime.sessions import check_signature

        for name, expected in graph_signatures(self.config).items():
            if name not in sessions:  # not used: see __init__
                continue
            problem = check_signature(sessions[name], expected)
            if problem:
                raise ModelFolderError(f"{self.model_dir / name}: not the graph config.json describes ({problem}); "
                                       f"{REEXPORT_HINT}")

    def _probe(self, decoders: dict, rows_file: str | None, fixed=None) -> None:
        """One tiny run of each graph with the largest id of its vocabulary, so a graph whose
        embedding or output layer doesn't match config.json fails here, not at translate time.
        decoders: file -> DecoderSession; rows_file: the one of them that takes the output rows;
        fixed: a fixed shortlist's FixedShortlist, whose decoder must score exactly its candidates."""
        cfg, last = self.config, self.config.tgt_vocab_size - 1
        try:
            src = np.array([[SOS_ID, cfg.src_vocab_size - 1, EOS_ID]], dtype=np.int64)
            state = self.encoder(src, np.array([3], dtype=np.int64))
        except Exception:
            raise ModelFolderError(f"{self.model_dir / ENCODER_FILE}: fails on source id {cfg.src_vocab_size - 1} "
                                   f"(its embedding is smaller than the src_vocab_size {cfg.src_vocab_size} of config.json); "
                                   f"{REEXPORT_HINT}") from None
        state = {k: v for k, v in state.items() if k not in OUTPUT_LAYER}  # whichever the batch got
        for name, decoder in decoders.items():
            if fixed is not None and name == DECODER_SHORTLIST_FILE:
                self._probe_decoder(decoder, name, state, len(fixed.state["candidates"]), fixed.state["candidates"])
                continue
            if name != rows_file:
                self._probe_decoder(decoder, name, state, cfg.tgt_vocab_size)
                continue
            try:  # the largest target id's row, alone: the decoder then scores exactly one column
                rows_state = {**state, **self.encoder.output_layer.rows(np.array([last], dtype=np.int64))}
            except Exception:
                raise ModelFolderError(f"{self.model_dir / OUTPUT_LAYER_FILE}: fails on target id {last} (its output "
                                       f"layer is smaller than the tgt_vocab_size {cfg.tgt_vocab_size} of config.json); "
                                       f"{REEXPORT_HINT}") from None
            self._probe_decoder(decoder, name, rows_state, 1)

    def _probe_decoder(self, decoder, name: str, state: dict, columns: int, candidates=None) -> None:
        last = self.config.tgt_vocab_size - 1
        try:
            next_ids, log_probs, _ = decoder.step(np.array([last], dtype=np.int64), state, want_log_probs=True)
        except Exception:
            raise ModelFolderError(f"{self.model_dir / name}: fails on target id {last} (its embedding is smaller "
                                   f"than the tgt_vocab_size {last + 1} of config.json); {REEXPORT_HINT}") from None
        if log_probs.shape != (1, columns) or not 0 <= int(next_ids[0]) <= last:
            raise ModelFolderError(f"{self.model_dir / name}: gives {log_probs.shape[-1]} target scores, "
                                   f"expected {columns}; {REEXPORT_HINT}")
        # a fixed shortlist's decoder maps its columns to ids itself: its pick must be the best column's id
        at = min(int(np.searchsorted(candidates, next_ids[0])), columns - 1) if candidates is not None else 0
        if candidates is not None and (candidates[at] != next_ids[0] or log_probs[0, at] < log_probs.max() - 1e-6):
            raise ModelFolderError(f"{self.model_dir / name}: its best column is not target id {int(next_ids[0])} "
                                   f"it gives (not the candidates of {SHORTLIST_FILE}); {REEXPORT_HINT}")

    def encode(self, text: str) -> tuple[list[int] | None, bool]:
        """Text, prepared as one sentence -> source ids (None when it has no token, e.g. only
        control characters), and whether it had to be truncated."""
        return self.codec.source_ids(prepare_source(text, self.config.text)[0])

    def translate(self, texts: str | list[str], *, max_len: int | None = None, batch_size: int = 32,
                  beam_size: int | None = None, n_best: int = 1, length_penalty: float | None = None,
                  return_scores: bool = False, split_sentences: bool = True):
        """Translates one string (-> a string) or a list of strings (-> a list, in input order).

        Each text is split into sentences (split_sentences=False: translated whole), all sentences
        of all texts are decoded together, sorted by length into batches, and each text comes back
        with its own spacing and line breaks around the translations; blank text comes back as it
        is. With return_scores each result is a list of n_best Hypothesis instead (a text's k-th
        joins its sentences' k-th, its score their sum). max_len caps every sentence's target
        tokens; beam_size and length_penalty default to the folder's config (beam 1 = greedy);
        n_best > 1 without beam_size searches with a beam of n_best.
        """
        if isinstance(texts, str):
            return self.translate([texts], max_len=max_len, batch_size=batch_size, beam_size=beam_size, n_best=n_best,
                                  length_penalty=length_penalty, return_scores=return_scores,
                                  split_sentences=split_sentences)[0]
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"texts must be a string or a list of strings, not {type(texts).__name__}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not a string")
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8, decoded with surrogateescape
                    raise ValueError(f"texts[{i}] is not valid Unicode (undecodable bytes?)") from None
        dec = self.config.decoding
        if beam_size is None:
            beam_size = max(dec.beam_size, n_best)
        if length_penalty is None:
            length_penalty = dec.length_penalty
        check_decoding(beam_size, n_best, length_penalty, max_len, batch_size)
        results, truncated = translate_texts(self.codec, self.encoder, self.decoder, list(texts), dec,
                                             split=split_sentences, max_len=max_len, batch_size=batch_size,
                                             beam_size=beam_size, n_best=n_best, length_penalty=length_penalty,
                                             with_scores=return_scores)
        if truncated:
            warnings.warn(f"{truncated} sentence(s) longer than the model's {self.config.max_source_len - 2} source "
                          "tokens were truncated", TruncationWarning, stacklevel=2)
        if return_scores:
            return [[Hypothesis(text, score) for text, score in r] for r in results]
        return [r[0][0] for r in results]

    def translate_lines(self, lines: Iterable[str], chunk_size: int = 256, **options) -> Iterator:
        """Streams: reads `chunk_size` lines at a time from any iterable (a file, stdin, a
        generator), translates them as `translate` does with **options, and yields one result per
        line, in order, without the line's ending ("\n", "\r\n": lines read from a file translate
        as `runtime translate --input` does). Memory stays bounded by the chunk, whatever the input's
        length."""
        _positive_int("chunk_size", chunk_size)
        chunk: list[str] = []
        for line in lines:
            chunk.append(line.rstrip("\r\n"))
            if len(chunk) == chunk_size:
                yield from self.translate(chunk, **options)
                chunk = []
        if chunk:
            yield from self.translate(chunk, **options)
