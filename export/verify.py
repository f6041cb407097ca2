"""Export verification: onnx.checker, then onnxruntime against PyTorch on real sentences."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.decode import greedy_search, pad_batch
from runtime.model_format import DecodingDefaults
from runtime.vocab import SOS_ID, Vocab, encode_text, max_target_len

ATOL = 1e-4


class VerificationError(Exception):
    pass


@dataclass
class Report:
    sentences: int = 0
    # hidden / cell (/ memory) / log_probs -> max |torch - onnxruntime|; *_scaled: relative to max(1, |value|)
    max_diff: dict = field(default_factory=dict)
    greedy_identical: int = 0
    int8_agreement: float | None = None  # fraction of sentences whose int8 greedy output equals fp32
    size_fp32: int = 0
    size_int8: int | None = None

    def lines(self) -> list[str]:
        d = self.max_diff
        memory = f"memory {d['memory']:.2e}, keys {d['keys_scaled']:.2e} relative, " if "memory" in d else ""
        out = [f"verified on {self.sentences} sentences of mixed length: max |diff| hidden {d['hidden']:.2e}, "
               f"cell {d['cell']:.2e} ({d['cell_scaled']:.2e} relative to max(1, |cell|)), {memory}"
               f"log-probs {d['log_probs']:.2e} ({d['log_probs_scaled']:.2e} relative); "
               f"greedy identical {self.greedy_identical}/{self.sentences}"]
        if self.int8_agreement is not None:
            out.append(f"int8: greedy output equals fp32 on {self.int8_agreement:.0%} of sentences; "
                       f"size {self.size_fp32 / 1e6:.2f} MB -> {self.size_int8 / 1e6:.2f} MB "
                       f"({self.size_fp32 / self.size_int8:.1f}x smaller)")
        return out


def sample_sentences(ckpt: dict, tokenizer, src_vocab: Vocab, max_source_len: int, n: int | None = None) -> list[str]:
    """The validation sentences the trainer kept in the checkpoint (or, in a checkpoint without
    them, phrases made from the source vocabulary), plus a one-word sentence and one at the maximum
    source length."""
    from trainer.checkpoint import SAMPLES

    n = n or SAMPLES
    texts = [t for t in ckpt.get("samples", []) if isinstance(t, str) and t.strip()][:n]
    words = src_vocab.itos[4:]
    if not texts:
        texts = [tokenizer.detokenize(words[i : i + 3 + i % 7], "src") for i in range(0, min(len(words), 12 * n), 12)][:n]
    word = tokenizer.detokenize(words[:1], "src") if words else "hello"
    # long enough to be cut at max_source_len (source_ids truncates it)
    longest = " ".join([" ".join(texts), word] * max_source_len)
    return texts + [word, longest]


def _encode_batch(texts, tokenizer, vocab, cfg):
    ids = [encode_text(t, tokenizer, vocab, cfg.reverse_source, cfg.max_source_len)[0] for t in texts]
    batch, lengths = pad_batch(ids)
    dec = DecodingDefaults()
    caps = np.array([max_target_len(len(i), dec) for i in ids])
    return batch, lengths, caps


def _relative(err: np.ndarray, ref: np.ndarray) -> float:
    """max of |error| / max(1, |reference|): for values whose float32 rounding grows with them."""
    return float((err / np.maximum(1.0, np.abs(ref))).max())


def check_graphs(paths) -> None:
    import onnx

    for p in paths:
        try:
            onnx.checker.check_model(str(p), full_check=True)
        except Exception as e:
            raise VerificationError(f"{p.name}: onnx.checker failed: {str(e).splitlines()[0]}") from None


def sessions(paths, vocab_size: int, rows: bool = False) -> tuple:
    """The runtime's session wrappers over the exported graphs (encoder, decoder[, output layer,
    shortlist decoder]), on the CPU, projecting onto the whole vocabulary: rows=True through the
    shortlist decoder, given every row of the output layer."""
    from runtime.sessions import DecoderSession, EncoderSession, OutputLayerSession, make_session

    enc_path, dec_path, *rest = paths
    output_layer = None
    if rows:
        layer_path, dec_path = rest
        output_layer = OutputLayerSession(make_session(layer_path, "cpu", None), "cpu", vocab_size)
    return (EncoderSession(make_session(enc_path, "cpu", None), "cpu", output_layer=output_layer),
            DecoderSession(make_session(dec_path, "cpu", None), "cpu"))


def compare(model, paths, texts, tokenizer, src_vocab, rows: bool = False) -> Report:
    """Runs the same padded batch through PyTorch and onnxruntime; compares the encoder's state
    (and memory), log-probs along PyTorch's greedy path, and greedy ids. rows: through the
    shortlist decoder (see sessions)."""
    import torch

    cfg = model.eval().cfg
    src, lengths, caps = _encode_batch(texts, tokenizer, src_vocab, cfg)
    enc, dec = sessions(paths, cfg.tgt_vocab_size, rows)
    torch_enc, torch_dec = model.runtime_adapters(torch.device("cpu"))
    with torch.no_grad():
        th, ort_state = torch_enc(src, lengths), enc(src, lengths)
        cell = th["cell"].numpy()
        cell_err = np.abs(cell - ort_state["cell"])
        # the cell state is unbounded (|c| ~ 100 after a long sentence) and so are the log-probs of
        # unlikely tokens (~ -50 in a trained model): float32 rounding grows with them, so both are
        # held to 1e-4 relative to max(1, |value|); hidden and memory (in [-1, 1]) absolute
        diffs = {name: float(np.abs(th[name].numpy() - ort_state[name]).max()) for name in ("hidden", "memory") if name in th}
        if "keys" in ort_state:  # W_a applied to the memory: |keys| grows with ||W_a||, held relative like the cell
            th_keys = torch_dec.model.decoder.with_source_state(th)["keys"].numpy()
            diffs.update(keys_scaled=_relative(np.abs(th_keys - ort_state["keys"]), th_keys))
        diffs.update(cell=float(cell_err.max()), cell_scaled=_relative(cell_err, cell))
        # PyTorch's greedy ids through the runtime's own loop, with the model behind its adapters
        torch_ids = greedy_search(torch_enc, torch_dec, src, lengths, caps)
        # log-probs along PyTorch's own greedy path, step by step, each side from its own state
        prev = np.full(len(texts), SOS_ID, dtype=np.int64)
        diff = scaled = 0.0
        for t in range(max(len(r) for r in torch_ids) + 1):
            next_ids, th_log_probs, th = torch_dec.step(prev, th, want_log_probs=True)
            _, ort_log_probs, ort_state = dec.step(prev, ort_state, want_log_probs=True)
            err = np.abs(th_log_probs - ort_log_probs)
            diff = max(diff, float(err.max()))
            scaled = max(scaled, _relative(err, th_log_probs))
            prev = next_ids
        diffs.update(log_probs=diff, log_probs_scaled=scaled)
    ort_ids = greedy_search(enc, dec, src, lengths, caps)
    same = sum(a == b for a, b in zip(torch_ids, ort_ids))
    return Report(sentences=len(texts), max_diff=diffs, greedy_identical=same)


def greedy_ids(paths, texts, tokenizer, src_vocab, cfg) -> list[list[int]]:
    src, lengths, caps = _encode_batch(texts, tokenizer, src_vocab, cfg)
    enc, dec = sessions(paths, cfg.tgt_vocab_size)
    return greedy_search(enc, dec, src, lengths, caps)


def check_fixed_shortlist(paths, fixed_path, candidates: np.ndarray, texts, tokenizer, src_vocab, cfg) -> None:
    """A fixed shortlist's decoder against decoder.onnx, each step from the same state along
    decoder.onnx's greedy path: its log-probs are decoder.onnx's renormalised over the candidates
    (1e-4 relative to max(1, |value|)), its next id is a candidate with the best of them, and the
    new state is decoder.onnx's exactly; and (format 8) greedy search of one sentence in one run of
    its Loop writes the ids its steps write one by one. VerificationError if not."""
    from runtime.sessions import DecoderSession, make_session

    src, lengths, caps = _encode_batch(texts, tokenizer, src_vocab, cfg)
    enc, dec = sessions(paths[:2], cfg.tgt_vocab_size)
    fixed = DecoderSession(make_session(fixed_path, "cpu", None), "cpu")
    state, prev = enc(src, lengths), np.full(len(texts), SOS_ID, dtype=np.int64)
    for _ in range(int(caps.max())):
        next_ids, whole, new_state = dec.step(prev, state, want_log_probs=True)
        ids, scores, fixed_state = fixed.step(prev, state, want_log_probs=True)
        kept = whole[:, candidates]
        kept = kept - np.logaddexp.reduce(kept, axis=1, keepdims=True)
        err = _relative(np.abs(scores - kept), kept)
        chosen = np.searchsorted(candidates, ids)
        best = scores[np.arange(len(ids)), np.minimum(chosen, len(candidates) - 1)]
        if not err <= ATOL or not np.isin(ids, candidates).all() or not (best >= scores.max(axis=1)).all():
            raise VerificationError(f"the fixed shortlist's decoder and decoder.onnx disagree (log-probs {err:.2e})")
        if any(not np.array_equal(new_state[k], fixed_state[k]) for k in new_state if k in fixed_state):
            raise VerificationError("the fixed shortlist's decoder and decoder.onnx give different states")
        state, prev = new_state, next_ids
    # its Loop (format 8): each sentence alone, greedy in one run, writes what its steps one by one write
    if fixed.multi_step:
        for k in range(len(texts)):
            one = (src[k: k + 1, : lengths[k]], lengths[k: k + 1], caps[k: k + 1])
            in_one_run = greedy_search(enc, fixed, *one)
            fixed.multi_step = False
            if greedy_search(enc, fixed, *one) != in_one_run:
                raise VerificationError("the fixed shortlist's decoder writes other ids in one run than step by step")
            fixed.multi_step = True


def worst(a: Report, b: Report) -> Report:
    """One report for two decoders verified on the same sentences: the larger of each difference,
    the fewer identical sentences."""
    diffs = {k: max(v, b.max_diff.get(k, v)) for k, v in a.max_diff.items()}
    return Report(sentences=a.sentences, max_diff=diffs, greedy_identical=min(a.greedy_identical, b.greedy_identical))


def assert_parity(report: Report) -> None:
    # cell and log-probs by their relative entries (cell_scaled, log_probs_scaled)
    bad = {k: v for k, v in report.max_diff.items() if k not in ("cell", "log_probs") and not v <= ATOL}
    if bad or report.greedy_identical != report.sentences:
        raise VerificationError(
            "onnxruntime and PyTorch disagree: "
            + ", ".join(f"max |diff| {k} {v:.2e} > {ATOL}" for k, v in bad.items())
            + (f" greedy identical on {report.greedy_identical}/{report.sentences} sentences" if report.greedy_identical != report.sentences else "")
        )
