"""The LSTM encoder-decoder of Sutskever, Vinyals & Le (2014)."""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from runtime.decode import trim
from runtime.vocab import EOS_ID, PAD_ID, SOS_ID
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

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, src_lengths: torch.Tensor, max_lens: torch.Tensor) -> list[list[int]]:
        """Batched greedy decoding; max_lens (B,) caps each sentence's tokens (<eos> included).

        Returns each sentence's ids without <sos>, up to and excluding <eos>.
        """
        hidden, cell = self.encoder(src, src_lengths)
        batch = src.size(0)
        prev = torch.full((batch,), SOS_ID, dtype=torch.long, device=src.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
        steps = []
        for t in range(int(max_lens.max())):
            logits, hidden, cell = self.decoder.step(prev, hidden, cell)
            prev = logits.argmax(-1)
            prev = torch.where(finished, torch.full_like(prev, PAD_ID), prev)
            steps.append(prev)
            finished |= (prev == EOS_ID) | (t + 1 >= max_lens.to(prev.device))
            if bool(finished.all()):
                break
        ids = torch.stack(steps, 1).tolist()  # (B, T)
        return [trim(row, cap) for row, cap in zip(ids, max_lens.tolist())]
