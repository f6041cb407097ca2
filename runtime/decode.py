"""Decoding loops over the session wrappers: batched greedy search (beam search in runtime/beam.py)."""
from __future__ import annotations

import numpy as np

from runtime.vocab import EOS_ID, PAD_ID, SOS_ID


def pad_batch(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Id rows -> src_ids (B, S) padded with <pad>=0, src_lengths (B,): the encoder graph's inputs."""
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

    Every sentence runs until its own <eos> or cap; the batch stops when all have ended.
    """
    state = encoder(src_ids, src_lengths)
    prev = np.full(len(src_ids), SOS_ID, dtype=np.int64)
    finished = np.zeros(len(src_ids), dtype=bool)
    steps = []
    for t in range(int(max_lens.max())):
        prev, _, state = decoder.step(prev, state)
        prev = np.where(finished, PAD_ID, prev)
        steps.append(prev)
        finished |= (prev == EOS_ID) | (t + 1 >= max_lens)
        if finished.all():
            break
    ids = np.stack(steps, axis=1)  # (B, T)
    return [trim(row, int(cap)) for row, cap in zip(ids, max_lens)]
