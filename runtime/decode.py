"""Decoding loops over the session wrappers: batched greedy search (beam search in runtime/beam.py)."""
from __future__ import annotations

import numpy as np

from runtime.beam import beam_search
from runtime.vocab import EOS_ID, PAD_ID, SOS_ID, max_target_len


def pad_batch(rows) -> tuple[np.ndarray, np.ndarray]:
    """Id rows (lists or arrays) -> ids (B, S) int64 padded with <pad>, lengths (B,) int64: the encoder
    graph's inputs (and the trainer's batches)."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    src = np.full((len(rows), int(lengths.max())), PAD_ID, dtype=np.int64)
    for k, row in enumerate(rows):
        src[k, : len(row)] = row
    return src, lengths


def trim(row, cap: int) -> list[int]:
    """A decoded row up to its cap, cut before the first <eos>."""
    row = [int(t) for t in row[:cap]]
    return row[: row.index(EOS_ID)] if EOS_ID in row else row


def greedy_search(encoder, decoder, src_ids: np.ndarray, src_lengths: np.ndarray, max_lens: np.ndarray) -> list[list[int]]:
    """src_ids (B, S), src_lengths (B,), max_lens (B,) -> each sentence's ids, <eos> excluded.

    Every sentence runs until its own <eos> or cap; the batch stops when all have ended. Once a
    quarter of the rows still decoding have ended, the state drops them (decoder.select): a step's
    cost follows the sentences still running, not the batch's longest one. Each row's arithmetic is
    its own, so which rows share a step does not change its result. (Not where the state lives on a
    GPU: decoder.compacts is False there, a gather through the host would cost more than it saves.)
    """
    state = encoder(src_ids, src_lengths)
    batch, longest = len(src_ids), int(max_lens.max())
    ids = np.full((batch, longest), PAD_ID, dtype=np.int64)  # (B, T)
    rows = np.arange(batch)  # the sentence of each state row
    caps = np.asarray(max_lens)
    prev = np.full(batch, SOS_ID, dtype=np.int64)
    ended = np.zeros(batch, dtype=bool)  # per state row
    for t in range(longest):
        prev, _, state = decoder.step(prev, state)
        ids[rows, t] = np.where(ended, PAD_ID, prev)
        ended |= (prev == EOS_ID) | (t + 1 >= caps)
        n_ended = int(ended.sum())
        if n_ended == len(rows):
            break
        if 4 * n_ended >= len(rows) and getattr(decoder, "compacts", True):
            keep = np.flatnonzero(~ended)
            state = decoder.select(state, keep)
            rows, caps, prev, ended = rows[keep], caps[keep], prev[keep], ended[keep]
    return [trim(row, int(cap)) for row, cap in zip(ids, max_lens)]


def decode_rows(encoder, decoder, rows: dict[int, list[int]], decoding, *, max_len: int | None = None,
                batch_size: int = 32, beam_size: int = 1, n_best: int = 1, length_penalty: float = 0.0,
                with_scores: bool = False) -> dict[int, list[tuple[list[int], float]]]:
    """The one decoding pipeline, for any encoder/decoder pair with the session wrappers'
    interface (onnxruntime sessions, or the trainer's PyTorch adapters).

    rows: key -> source ids. Sentences are sorted by length into batches (little padding); each
    gets at most min(cap, a * source ids + b) target tokens (decoding = DecodingDefaults).
    -> key -> its n_best (target ids without <eos>, score). Greedy (beam 1, no scores) takes the
    short loop; everything else beam search (beam 1 there is exactly greedy).
    """
    order = sorted(rows, key=lambda i: len(rows[i]))
    out: dict[int, list[tuple[list[int], float]]] = {}
    for start in range(0, len(order), batch_size):
        keys = order[start : start + batch_size]
        src, lengths = pad_batch([rows[i] for i in keys])  # (B, S), (B,)
        caps = np.array([max_target_len(int(n), decoding, max_len) for n in lengths])
        if beam_size == 1 and not with_scores:
            hyps = [[(ids, 0.0)] for ids in greedy_search(encoder, decoder, src, lengths, caps)]
        else:
            hyps = beam_search(encoder, decoder, src, lengths, caps, beam_size, n_best, length_penalty)
        out.update(zip(keys, hyps))
    return out
