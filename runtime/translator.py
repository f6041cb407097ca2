"""`Translator`: load a model folder once, translate lists of sentences (thread-safe)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.model_format import (
    DECODER_FILE, ENCODER_FILE, SOURCE_VOCAB_FILE, TARGET_VOCAB_FILE, TOKENIZER_FILE, REEXPORT_HINT,
    ModelFolderError, load_config, read_json,
)
from runtime.tokenizer import Tokenizer
from runtime.vocab import Vocab, max_target_len, source_ids


class TruncationWarning(UserWarning):
    """Some input was longer than the model's maximum source length and was cut."""


@dataclass
class Hypothesis:
    text: str
    score: float  # sum of token log-probabilities (<eos> included), divided by length ** alpha


class Translator:
    """Translates with an exported model folder on onnxruntime.

    >>> Translator("artifacts/onnx").translate(["hello"])
    ['Bonjour']
    """

    def __init__(self, model_dir: str | os.PathLike = "artifacts/onnx", device: str = "auto", threads: int | None = None):
        from runtime.sessions import DecoderSession, EncoderSession, DeviceError, make_session, resolve_device

        self.model_dir = Path(model_dir)
        self.config = load_config(self.model_dir)  # format version + sha256 of every file
        try:
            self.tokenizer = Tokenizer.from_dict(read_json(self.model_dir / TOKENIZER_FILE, TOKENIZER_FILE))
            self.src_vocab = Vocab(read_json(self.model_dir / SOURCE_VOCAB_FILE, SOURCE_VOCAB_FILE))
            self.tgt_vocab = Vocab(read_json(self.model_dir / TARGET_VOCAB_FILE, TARGET_VOCAB_FILE))
        except (TypeError, ValueError) as e:
            raise ModelFolderError(f"{self.model_dir}: invalid vocabulary or tokenizer ({e}); {REEXPORT_HINT}") from None
        for name, vocab, size in ((SOURCE_VOCAB_FILE, self.src_vocab, self.config.src_vocab_size),
                                  (TARGET_VOCAB_FILE, self.tgt_vocab, self.config.tgt_vocab_size)):
            if len(vocab) != size:
                raise ModelFolderError(f"{self.model_dir / name}: {len(vocab)} tokens, config says {size}; {REEXPORT_HINT}")
        self.device, self.notice = resolve_device(device)
        try:
            try:
                encoder = make_session(self.model_dir / ENCODER_FILE, self.device, threads)
            except DeviceError as e:
                if device != "auto":
                    raise
                self.device, self.notice = "cpu", f"notice: {e}; running on CPU"
                encoder = make_session(self.model_dir / ENCODER_FILE, "cpu", threads)
            decoder = make_session(self.model_dir / DECODER_FILE, self.device, threads)
        except DeviceError:
            raise
        except Exception as e:  # onnxruntime raises its own exception types for a bad graph
            raise ModelFolderError(f"{self.model_dir}: onnxruntime cannot load the graphs ({str(e).splitlines()[0][:200]}); "
                                   f"{REEXPORT_HINT}") from None
        self.encoder = EncoderSession(encoder, self.device)
        self.decoder = DecoderSession(decoder, self.device)

    def encode(self, text: str) -> tuple[list[int], bool]:
        """-> source ids, and whether the text had to be truncated."""
        tokens = self.tokenizer.tokenize(text)
        limit = self.config.max_source_len - 2
        return source_ids(tokens, self.src_vocab, self.config.reverse_source, self.config.max_source_len), len(tokens) > limit

    def translate(self, texts: list[str], max_len: int | None = None, batch_size: int = 32, beam_size: int | None = None,
                  n_best: int = 1, length_penalty: float | None = None, return_scores: bool = False):
        """Translates texts; returns strings, or with return_scores lists of n_best Hypothesis.

        Sentences are sorted by length into batches; the result keeps the input order. Empty or
        whitespace-only text translates to "". max_len caps every sentence's target tokens;
        beam_size and length_penalty default to the folder's config (beam 1 = greedy).
        """
        from runtime.beam import beam_search
        from runtime.decode import greedy_search, pad_batch

        dec = self.config.decoding
        beam_size = dec.beam_size if beam_size is None else beam_size
        if beam_size < 1 or not 1 <= n_best <= beam_size:
            raise ValueError(f"need beam_size >= 1 and 1 <= n_best <= beam_size (got {beam_size}, {n_best})")
        if batch_size < 1 or (max_len is not None and max_len < 1):
            raise ValueError("batch_size and max_len must be positive")
        alpha = dec.length_penalty if length_penalty is None else length_penalty
        results: list[list[Hypothesis]] = [[Hypothesis("", 0.0)] for _ in texts]
        encoded = {}
        truncated = 0
        for i, text in enumerate(texts):
            if text.strip():
                ids, cut = self.encode(text)
                encoded[i] = ids
                truncated += cut
        if truncated:
            warnings.warn(f"{truncated} sentence(s) longer than the model's {self.config.max_source_len - 2} source "
                          "tokens were truncated", TruncationWarning, stacklevel=2)
        order = sorted(encoded, key=lambda i: len(encoded[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            src, lengths = pad_batch([encoded[i] for i in idx])  # (B, S), (B,)
            caps = np.array([max_target_len(int(n), dec.max_len_a, dec.max_len_b, max_len or dec.max_len) for n in lengths])
            if beam_size == 1 and not return_scores:
                hyps = [[(ids, 0.0)] for ids in greedy_search(self.encoder, self.decoder, src, lengths, caps)]
            else:
                hyps = beam_search(self.encoder, self.decoder, src, lengths, caps, beam_size, n_best, alpha)
            for i, sent in zip(idx, hyps):
                results[i] = [Hypothesis(self.tokenizer.detokenize(self.tgt_vocab.tokens(ids)), score) for ids, score in sent]
        if return_scores:
            return results
        return [r[0].text for r in results]
