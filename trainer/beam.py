"""Beam search for `trainer evaluate --beam N`: the runtime's algorithm over PyTorch modules,
so BLEU measured here matches the runtime's."""
from __future__ import annotations

import numpy as np
import torch

from runtime.beam import beam_search


class _TorchEncoder:
    def __init__(self, model, device):
        self.model, self.device = model, device

    def __call__(self, src_ids: np.ndarray, src_lengths: np.ndarray):
        return self.model.encoder(torch.as_tensor(src_ids, device=self.device), torch.as_tensor(src_lengths))


class _TorchDecoder:
    """Same interface as runtime.sessions.DecoderSession."""

    def __init__(self, model, device):
        self.model, self.device = model, device

    def step(self, prev_ids: np.ndarray, state, want_log_probs: bool = False):
        logits, hidden, cell = self.model.decoder.step(torch.as_tensor(prev_ids, device=self.device), *state)
        log_probs = torch.log_softmax(logits.float(), -1).cpu().numpy() if want_log_probs else None
        return logits.argmax(-1).cpu().numpy(), log_probs, (hidden, cell)

    def select(self, state, rows: np.ndarray):
        idx = torch.as_tensor(rows, device=self.device)
        return state[0][:, idx], state[1][:, idx]


@torch.no_grad()
def torch_beam_search(model, src: torch.Tensor, src_lengths: torch.Tensor, max_lens: torch.Tensor, beam_size: int,
                      length_penalty: float = 0.0) -> list[list[int]]:
    """-> the best hypothesis' ids for each sentence."""
    device = src.device
    hyps = beam_search(_TorchEncoder(model, device), _TorchDecoder(model, device), src.cpu().numpy(),
                       src_lengths.cpu().numpy(), max_lens.cpu().numpy(), beam_size, 1, length_penalty)
    return [h[0][0] for h in hyps]
