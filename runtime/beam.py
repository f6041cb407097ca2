"""Batched beam search (Sutskever et al. 2014, section 3.2) over the session wrappers.

All sentences x beams go through the decoder in one call per step. A hypothesis that emits
<eos> (or reaches its sentence's cap) leaves the beam and joins that sentence's finished list;
a sentence is done once it has `beam_size` finished hypotheses. Finished hypotheses are ranked
by sum(log p) / length ** alpha, where length counts the generated tokens (<eos> included);
alpha = 0 ranks by plain log-probability. With beam_size 1 this is exactly greedy search.
"""
from __future__ import annotations

import numpy as np

from runtime.vocab import EOS_ID, PAD_ID, SOS_ID


def normalized(score: float, length: int, alpha: float) -> float:
    return score / (length ** alpha) if alpha else score


def beam_search(encoder, decoder, src_ids: np.ndarray, src_lengths: np.ndarray, max_lens: np.ndarray,
                beam_size: int, n_best: int = 1, alpha: float = 0.0) -> list[list[tuple[list[int], float]]]:
    """-> for each sentence, its n_best (ids without <eos>, normalized score), best first."""
    batch, k = len(src_ids), beam_size
    state = encoder(src_ids, src_lengths)
    state = decoder.select(state, np.repeat(np.arange(batch), k))  # row b*k + j is beam j of sentence b
    scores = np.full((batch, k), -np.inf)
    scores[:, 0] = 0.0  # one live hypothesis at the start, so beams don't duplicate it
    tokens: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(batch)]
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    prev = np.full(batch * k, SOS_ID, dtype=np.int64)
    for t in range(int(max_lens.max())):
        _, log_probs, state = decoder.step(prev, state, want_log_probs=True)
        vocab = log_probs.shape[-1]
        cand = scores[:, :, None] + log_probs.reshape(batch, k, vocab)  # (B, K, V)
        flat = cand.reshape(batch, k * vocab)
        top = np.argpartition(-flat, 2 * k - 1, axis=1)[:, : 2 * k] if 2 * k < k * vocab else np.tile(np.arange(k * vocab), (batch, 1))
        rows = np.arange(batch * k)  # which old row each new beam continues; identity for done sentences
        new_scores = np.full((batch, k), -np.inf)
        new_tokens = [[[] for _ in range(k)] for _ in range(batch)]
        prev = np.full(batch * k, PAD_ID, dtype=np.int64)
        for b in range(batch):
            if done[b]:
                continue
            at_cap = t + 1 >= max_lens[b]
            live = 0
            for c in sorted(top[b], key=lambda c: -flat[b, c]):
                score = float(flat[b, c])
                if score == -np.inf:
                    break
                beam, tok = divmod(int(c), vocab)
                if tok == EOS_ID or at_cap:
                    ids = tokens[b][beam] + ([] if tok == EOS_ID else [tok])
                    finished[b].append((ids, normalized(score, t + 1, alpha)))
                    if len(finished[b]) >= k:
                        break
                    continue
                rows[b * k + live] = b * k + beam
                new_scores[b, live] = score
                new_tokens[b][live] = tokens[b][beam] + [tok]
                prev[b * k + live] = tok
                live += 1
                if live == k:
                    break
            if len(finished[b]) >= k or at_cap:
                done[b] = True
        if done.all():
            break
        scores, tokens = new_scores, new_tokens
        state = decoder.select(state, rows)
    return [sorted(f, key=lambda h: -h[1])[:n_best] for f in finished]
