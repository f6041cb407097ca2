"""Batched beam search (Sutskever et al. 2014, section 3.2) over the session wrappers.

All sentences x beams go through the decoder in one call per step. A hypothesis that emits
<eos> (or reaches its sentence's cap) leaves the beam and joins that sentence's finished list;
a sentence is done once it has `beam_size` finished hypotheses. Finished hypotheses are ranked
by sum(log p) / length ** alpha, where length counts the generated tokens (<eos> included);
alpha = 0 ranks by plain log-probability. With beam_size 1 this is exactly greedy search. With a
shortlist (format 4) the log-probabilities are those of a softmax over the batch's candidates only,
renormalized over them, as Marian scores with its lexical shortlists.

Vectorised: per step, float32 scores of all candidates, `argpartition` for each sentence's best
2K, one stable sort of those 2K, and masks that say which candidates the sequential rule (walk
the candidates best first; an <eos> one finishes, any other fills the next beam; stop at K live
or K finished) would reach. Hypotheses are an (B*K, t) array gathered by row each step; Python
touches only the hypotheses that finish (at most K per sentence over the whole search).
"""
from __future__ import annotations

import numpy as np

from runtime.vocab import EOS_ID, PAD_ID, SOS_ID


def normalized(score: float, length: int, length_penalty: float) -> float:
    return score / (length ** length_penalty) if length_penalty else score


def _columns(state) -> np.ndarray | None:
    """The target id of each log_probs column when a shortlist restricts them (format 4), else None.
    On CUDA the state holds it as an OrtValue: brought to the host once per batch."""
    ids = state.get("candidates") if isinstance(state, dict) else None
    return ids if ids is None or isinstance(ids, np.ndarray) else ids.numpy()


def beam_search(encoder, decoder, src_ids: np.ndarray, src_lengths: np.ndarray, max_lens: np.ndarray,
                beam_size: int, n_best: int = 1, length_penalty: float = 0.0) -> list[list[tuple[list[int], float]]]:
    """-> for each sentence, its n_best (ids without <eos>, normalized score), best first."""
    batch, k = len(src_ids), beam_size
    state = encoder(src_ids, src_lengths)
    state = decoder.select(state, np.repeat(np.arange(batch), k))  # row b*k + j is beam j of sentence b
    scores = np.full((batch, k), -np.inf, dtype=np.float32)
    scores[:, 0] = 0.0  # one live hypothesis at the start, so beams don't duplicate it
    history = np.zeros((batch * k, 0), dtype=np.int64)  # (B*K, t): each row's tokens so far
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(batch)]
    n_finished = np.zeros(batch, dtype=np.int64)
    done = np.zeros(batch, dtype=bool)
    prev = np.full(batch * k, SOS_ID, dtype=np.int64)
    columns = _columns(state)  # (K,) target ids of the log_probs columns, or None: all, in order
    for t in range(int(max_lens.max())):
        _, log_probs, state = decoder.step(prev, state, want_log_probs=True)
        vocab = log_probs.shape[-1]  # K columns: the whole vocabulary or the batch's shortlist
        flat = (scores[:, :, None] + log_probs.reshape(batch, k, vocab).astype(np.float32)).reshape(batch, k * vocab)
        width = min(2 * k, k * vocab)  # 2K candidates: enough for K live ones even if K of them end
        top = np.argpartition(-flat, width - 1, axis=1)[:, :width] if width < k * vocab else \
            np.tile(np.arange(k * vocab), (batch, 1))
        order = np.argsort(-np.take_along_axis(flat, top, axis=1), axis=1, kind="stable")
        cand = np.take_along_axis(top, order, axis=1)  # (B, 2K) best first
        cand_score = np.take_along_axis(flat, cand, axis=1)
        beam, tok = np.divmod(cand, vocab)
        if columns is not None:  # a shortlist: column -> target id
            tok = columns[tok]
        at_cap = (t + 1 >= max_lens)[:, None]  # (B, 1)
        ends = (tok == EOS_ID) | at_cap  # this candidate finishes its hypothesis
        # which candidates the sequential walk reaches: fewer than K live and fewer than K finished
        # before it, a finite score, and its sentence not done
        live_before = np.cumsum(~ends, axis=1) - ~ends
        finished_before = np.cumsum(ends, axis=1) - ends + n_finished[:, None]
        reached = (live_before < k) & (finished_before < k) & np.isfinite(cand_score) & ~done[:, None]
        rows = np.arange(batch * k)  # which old row each new beam continues; identity for done sentences
        new_scores = np.full((batch, k), -np.inf, dtype=np.float32)
        new_prev = np.full(batch * k, PAD_ID, dtype=np.int64)
        grow = reached & ~ends  # (B, 2K): continues as live beam number live_before
        b_idx, c_idx = np.nonzero(grow)
        slot = b_idx * k + live_before[b_idx, c_idx]
        rows[slot] = b_idx * k + beam[b_idx, c_idx]
        new_scores[b_idx, live_before[b_idx, c_idx]] = cand_score[b_idx, c_idx]
        new_prev[slot] = tok[b_idx, c_idx]
        for b, c in zip(*np.nonzero(reached & ends)):  # at most K per sentence over the whole search
            ids = history[b * k + beam[b, c]].tolist() + ([] if tok[b, c] == EOS_ID else [int(tok[b, c])])
            finished[b].append((ids, normalized(float(cand_score[b, c]), t + 1, length_penalty)))
        n_finished += (reached & ends).sum(axis=1)
        done |= (n_finished >= k) | at_cap[:, 0]
        if done.all():
            break
        scores, prev = new_scores, new_prev
        history = np.concatenate([history[rows], new_prev[:, None]], axis=1)
        state = decoder.select(state, rows, same_sources=True)  # each beam continues one of its sentence's
    return [sorted(f, key=lambda h: -h[1])[:n_best] for f in finished]
