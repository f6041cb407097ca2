"""Decoding loops over the session wrappers: batched greedy search (beam search in runtime/beam.py)."""
from __future__ import annotations

import numpy as np

from runtime.beam import beam_search
from runtime.vocab import EOS_ID, PAD_ID, SOS_ID, max_target_len


def pad_batch(rows) -> tuple[np.ndarray, np.ndarray]:
    """Id rows (lists or arrays) -> ids (B, S) int64 padded with <pad>, lengths (B,) int64: the encoder
    graph's inputs (and the trainer's batches)."""
    lengths = [len(r) for r in rows]  # Python's min and max, not numpy's: see greedy_search on numpy calls
    if min(lengths) == max(lengths):  # nothing to pad (one sentence): one numpy call, not one per row
        return np.array(rows, dtype=np.int64).reshape(len(rows), lengths[0]), np.array(lengths, dtype=np.int64)
    src = np.full((len(rows), max(lengths)), PAD_ID, dtype=np.int64)
    for k, row in enumerate(rows):
        src[k, : lengths[k]] = row
    return src, np.array(lengths, dtype=np.int64)


def greedy_search(encoder, decoder, src_ids: np.ndarray, src_lengths: np.ndarray, max_lens) -> list[list[int]]:
    """src_ids (B, S), src_lengths (B,), max_lens (B,) ints -> each sentence's ids, <eos> excluded.

    Every sentence runs until its own <eos> or cap; the batch stops when all have ended. Once a
    quarter of the rows still decoding have ended, the state drops them (decoder.select): a step's
    cost follows the sentences still running, not the batch's longest one. Each row's arithmetic is
    its own, so which rows share a step does not change its result. (Not where the state lives on a
    GPU: decoder.compacts is False there, a gather through the host would cost more than it saves.)

    The bookkeeping is Python's, on the step's tokens as a list: each step's run leaves the caches
    cold, and every numpy call after it cost several µs (at batch 1, the 8 per step of before were
    ~15% of decoding; now one).
    """
    state = encoder(src_ids, src_lengths)
    caps = [int(c) for c in max_lens]
    if len(caps) == 1 and getattr(decoder, "multi_step", False):  # the steps in one run (format 8, see sessions)
        ids = decoder.steps(np.full(1, SOS_ID, dtype=np.int64), state, caps[0])
        return [ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids]
    out: list[list[int]] = [[] for _ in caps]  # each sentence's ids so far
    rows = list(range(len(caps)))  # the sentence of each state row
    live = [True] * len(caps)  # per state row: its sentence still decoding
    prev = np.full(len(caps), SOS_ID, dtype=np.int64)
    for _ in range(max(caps)):
        prev, _, state = decoder.step(prev, state)
        for k, token in enumerate(prev.tolist()):
            if live[k]:
                ids = out[rows[k]]
                if token == EOS_ID:
                    live[k] = False
                else:
                    ids.append(token)
                    live[k] = len(ids) < caps[rows[k]]
        n_live = sum(live)
        if n_live == 0:
            break
        if 4 * (len(rows) - n_live) >= len(rows) and getattr(decoder, "compacts", True):
            keep = [k for k, alive in enumerate(live) if alive]
            state = decoder.select(state, np.array(keep))
            rows, prev, live = [rows[k] for k in keep], prev[keep], [True] * len(keep)
    return out


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
        caps = [max_target_len(len(rows[i]), decoding, max_len) for i in keys]
        if beam_size == 1 and not with_scores:
            hyps = [[(ids, 0.0)] for ids in greedy_search(encoder, decoder, src, lengths, caps)]
        else:
            hyps = beam_search(encoder, decoder, src, lengths, np.array(caps), beam_size, n_best, length_penalty)
        out.update(zip(keys, hyps))
    return out
