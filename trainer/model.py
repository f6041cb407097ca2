"""The LSTM encoder-decoder of Sutskever, Vinyals & Le (2014)."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from runtime.vocab import PAD_ID
from trainer.config import ModelConfig  # noqa: F401  (re-exported)


def _embedding_lstm(module: nn.Module, vocab_size: int, cfg: ModelConfig) -> None:
    """embedding -> dropout -> multi-layer LSTM (dropout between layers), shared by both sides."""
    module.embedding = nn.Embedding(vocab_size, cfg.emb_dim, padding_idx=PAD_ID)
    module.dropout = nn.Dropout(cfg.dropout)
    module.lstm = nn.LSTM(cfg.emb_dim, cfg.hidden_dim, cfg.layers, dropout=cfg.dropout if cfg.layers > 1 else 0.0,
                          batch_first=True)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        _embedding_lstm(self, cfg.src_vocab_size, cfg)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) padded ids, lengths (B,) -> hidden, cell (L, B, H).

        Packing makes each sentence's final state ignore the padding after it.
        """
        emb = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, cell) = self.lstm(packed)
        return hidden, cell


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        _embedding_lstm(self, cfg.tgt_vocab_size, cfg)
        self.out = nn.Linear(cfg.hidden_dim, cfg.tgt_vocab_size)

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor):
        """tokens (B, T) -> logits (B, T, V), hidden, cell (L, B, H). T=1 is one decoding step."""
        emb = self.dropout(self.embedding(tokens))  # (B, T, E)
        output, (hidden, cell) = self.lstm(emb, (hidden, cell))  # (B, T, H)
        return self.out(output), hidden, cell

    def step(self, prev: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor):
        """prev (B,) -> logits (B, V), hidden, cell."""
        logits, hidden, cell = self(prev.unsqueeze(1), hidden, cell)
        return logits.squeeze(1), hidden, cell


class Seq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        for p in self.parameters():  # the paper's init
            nn.init.uniform_(p, -0.08, 0.08)

    def forward(self, src, src_lengths, tgt, teacher_forcing: float = 1.0) -> torch.Tensor:
        """src (B, S), tgt (B, T) with <sos> first -> logits (B, T-1, V) predicting tgt[:, 1:].

        teacher_forcing 1.0 runs the decoder LSTM over the whole target in one call (fast path);
        below 1.0 each step feeds the gold token with that probability, else the model's own guess.
        """
        hidden, cell = self.encoder(src, src_lengths)
        if teacher_forcing >= 1.0:
            logits, _, _ = self.decoder(tgt[:, :-1], hidden, cell)
            return logits
        steps = tgt.size(1) - 1
        logits = torch.empty(tgt.size(0), steps, self.cfg.tgt_vocab_size, device=tgt.device)
        prev = tgt[:, 0]
        for t in range(steps):
            step_logits, hidden, cell = self.decoder.step(prev, hidden, cell)
            logits[:, t] = step_logits
            use_gold = torch.rand(tgt.size(0), device=tgt.device) < teacher_forcing
            prev = torch.where(use_gold, tgt[:, t + 1], step_logits.argmax(-1))
        return logits

    def loss(self, src, src_lengths, tgt, teacher_forcing: float = 1.0) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over the non-padding target tokens, and their count.

        The fast path projects only real tokens' outputs onto the vocabulary: with a large target
        vocabulary that projection is most of the work, and padding positions would be thrown away.
        """
        gold = tgt[:, 1:]
        mask = gold != PAD_ID  # (B, T-1)
        if teacher_forcing >= 1.0:
            hidden, cell = self.encoder(src, src_lengths)
            emb = self.decoder.dropout(self.decoder.embedding(tgt[:, :-1]))  # (B, T-1, E)
            output, _ = self.decoder.lstm(emb, (hidden, cell))  # (B, T-1, H)
            logits = self.decoder.out(output[mask])  # (N, V)
        else:
            logits = self(src, src_lengths, tgt, teacher_forcing)[mask]
        return nn.functional.cross_entropy(logits.float(), gold[mask]), int(mask.sum())

    def runtime_adapters(self, device=None) -> tuple["TorchEncoder", "TorchDecoder"]:
        """This model behind the interface of the runtime's session wrappers, so the trainer and
        the export verification decode with the runtime's own greedy and beam loops."""
        device = device or next(self.parameters()).device
        return TorchEncoder(self, device), TorchDecoder(self, device)


class TorchEncoder:
    """Same interface as runtime.sessions.EncoderSession. The state is (hidden, cell), each
    (L, B, H), kept on the model's device between steps."""

    def __init__(self, model: Seq2Seq, device):
        self.model, self.device = model.eval(), device

    @torch.no_grad()
    def __call__(self, src_ids, src_lengths):
        return self.model.encoder(torch.as_tensor(src_ids, device=self.device), torch.as_tensor(src_lengths))


class TorchDecoder:
    """Same interface as runtime.sessions.DecoderSession: step and select over the state."""

    def __init__(self, model: Seq2Seq, device):
        self.model, self.device = model.eval(), device

    @torch.no_grad()
    def step(self, prev_ids, state, want_log_probs: bool = False):
        """prev_ids (B,) -> (next_ids (B,), log_probs (B, V) float32 or None, new state), numpy out."""
        logits, hidden, cell = self.model.decoder.step(torch.as_tensor(prev_ids, device=self.device), *state)
        log_probs = torch.log_softmax(logits.float(), -1).cpu().numpy() if want_log_probs else None
        return logits.argmax(-1).cpu().numpy(), log_probs, (hidden, cell)

    def select(self, state, rows):
        idx = torch.as_tensor(rows, device=self.device)
        return tuple(x[:, idx] for x in state)
