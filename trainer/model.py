"""The LSTM encoder-decoder of Sutskever, Vinyals & Le (2014), and optionally Luong et al.'s
(2015) global attention with input feeding on top of it.

The decoder state is one dict whose names are the one-step decoder graph's inputs
(runtime/state.py): hidden and cell (L, B, H); with attention also input_feed
(B, H), memory (B, S, H) and src_lengths (B,), and from the first decoder step on the attention's
keys (B, H, S) and score_bias (B, 1, S). Everything that decodes passes it around whole.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from runtime.state import ATTENTION_LUONG, select_rows
from runtime.vocab import PAD_ID
from trainer.config import ModelConfig  # noqa: F401  (re-exported)

State = dict  # name -> tensor, see the module docstring


def _embedding_lstm(module: nn.Module, vocab_size: int, cfg: ModelConfig, input_extra: int = 0) -> None:
    """embedding -> dropout -> multi-layer LSTM (dropout between layers), shared by both sides."""
    module.embedding = nn.Embedding(vocab_size, cfg.emb_dim, padding_idx=PAD_ID)
    module.dropout = nn.Dropout(cfg.dropout)
    module.lstm = nn.LSTM(cfg.emb_dim + input_extra, cfg.hidden_dim, cfg.layers,
                          dropout=cfg.dropout if cfg.layers > 1 else 0.0, batch_first=True)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        _embedding_lstm(self, cfg.src_vocab_size, cfg)
        self.keep_memory = cfg.attention == ATTENTION_LUONG

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> State:
        """src (B, S) padded ids, lengths (B,) -> the decoder's initial state.

        Packing makes each sentence's final state ignore the padding after it; the memory (the
        top layer's outputs) is zero at padded positions, which attention masks out anyway.
        """
        emb = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        outputs, (hidden, cell) = self.lstm(packed)
        state = {"hidden": hidden, "cell": cell}
        if self.keep_memory:
            memory, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))  # (B, S, H)
            lengths = lengths.to(src.device)
            state.update(input_feed=memory.new_zeros(src.size(0), memory.size(-1)), memory=memory, src_lengths=lengths)
        return state


class GlobalAttention(nn.Module):
    """Luong et al. (2015) global attention, "general" score: score(h_t, m_s) = h_t^T W_a m_s.
    The attentional state is tanh(W_c [context; h_t]) (no biases, as in OpenNMT-py).

    W_a is applied to the memory once per batch (`keys`, B x H x S) rather than to the query at every
    step: h_t^T (W_a m_s) is the same score, and a decoder step then only takes dot products."""

    def __init__(self, hidden_dim: int):
        super().__init__()
        self.linear_in = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.linear_out = nn.Linear(2 * hidden_dim, hidden_dim, bias=False)

    def source_state(self, memory: torch.Tensor, src_lengths: torch.Tensor) -> dict:
        """memory (B, S, H), src_lengths (B,) -> keys (B, H, S) = (W_a m_s)_s and score_bias (B, 1, S):
        0 at a sentence's positions, -inf at its padding, which therefore gets weight exactly 0 (a
        sentence's result does not depend on the batch it is padded into)."""
        keys = torch.matmul(memory, self.linear_in.weight).transpose(1, 2)  # column s: W_a^T m_s
        positions = torch.arange(memory.size(1), device=memory.device)
        padded = positions[None, None, :] >= src_lengths.to(memory.device)[:, None, None]  # (B, 1, S)
        bias = torch.zeros(padded.shape, dtype=torch.float32, device=memory.device).masked_fill(padded, float("-inf"))
        return {"keys": keys, "score_bias": bias}

    def forward(self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, score_bias: torch.Tensor):
        """query (B, T, H), memory (B, S, H), keys (B, H, S), score_bias (B, 1, S) -> attentional
        (B, T, H), weights (B, T, S)."""
        scores = torch.bmm(query, keys)  # (B, T, S)
        weights = torch.softmax(scores.float() + score_bias, -1).to(memory.dtype)
        context = torch.bmm(weights, memory)  # (B, T, H)
        return torch.tanh(self.linear_out(torch.cat([context, query], -1))), weights


class Decoder(nn.Module):
    """The paper's decoder, or with attention the input-feeding decoder: each step's LSTM input
    is its token's embedding joined with the previous step's attentional state (B, H)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attention = GlobalAttention(cfg.hidden_dim) if cfg.attention == ATTENTION_LUONG else None
        _embedding_lstm(self, cfg.tgt_vocab_size, cfg, input_extra=cfg.hidden_dim if self.attention else 0)
        self.out = nn.Linear(cfg.hidden_dim, cfg.tgt_vocab_size)

    def outputs(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens (B, T) -> the vectors that `out` projects onto the vocabulary (B, T, H), new state.

        Without attention the LSTM runs over the whole sequence in one call; input feeding
        makes each step depend on the last one's output, so with attention it steps.
        """
        emb = self.dropout(self.embedding(tokens))  # (B, T, E)
        state = self.with_source_state(state)
        if self.attention is None:
            output, (hidden, cell) = self.lstm(emb, (state["hidden"], state["cell"]))  # (B, T, H)
            return output, {"hidden": hidden, "cell": cell}
        if tokens.size(1) > 1:
            return self._input_feeding_steps(emb, state)
        feed, state, _ = self._attention_step(emb[:, 0], state)
        return feed.unsqueeze(1), state

    def with_source_state(self, state: State) -> State:
        """The state with attention's per-sentence parts (keys, score_bias) added once per batch."""
        if self.attention is None or "keys" in state:
            return state
        return {**state, **self.attention.source_state(state["memory"], state["src_lengths"])}

    def _attention_step(self, emb: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """One step with nn.LSTM (the exported path): emb (B, E) -> attentional state (B, H),
        which is also the next step's feed, new state, attention weights (B, S)."""
        x = torch.cat([emb, state["input_feed"].to(emb.dtype)], -1).unsqueeze(1)  # (B, 1, E + H)
        output, (hidden, cell) = self.lstm(x, (state["hidden"], state["cell"]))  # (B, 1, H)
        attentional, weights = self.attention(output, state["memory"], state["keys"], state["score_bias"])
        feed = self.dropout(attentional.squeeze(1))
        return feed, {**state, "hidden": hidden, "cell": cell, "input_feed": feed}, weights.squeeze(1)

    def _input_feeding_steps(self, emb: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """emb (B, T, E) -> (B, T, H): the same computation as T calls of the one-step path, done
        with the LSTM's own weights instead of T calls of nn.LSTM (each a oneDNN/cuDNN call with its
        own setup, forward and backward), and the embeddings' share of the first layer's input
        projection done for all T steps in one product."""
        lstm, layers, size = self.lstm, self.lstm.num_layers, emb.size(-1)
        w_ih0 = lstm.weight_ih_l0  # (4H, E + H): [embedding | input feed] columns
        from_emb = nn.functional.linear(emb, w_ih0[:, :size], lstm.bias_ih_l0 + lstm.bias_hh_l0)  # (B, T, 4H)
        hidden, cell = list(state["hidden"].unbind(0)), list(state["cell"].unbind(0))  # L x (B, H)
        feed, steps = state["input_feed"], []
        for t in range(emb.size(1)):
            x = None
            for k in range(layers):
                w_hh = getattr(lstm, f"weight_hh_l{k}")
                if k == 0:
                    gates = from_emb[:, t] + nn.functional.linear(feed.to(emb.dtype), w_ih0[:, size:]) \
                        + nn.functional.linear(hidden[0], w_hh)
                else:  # nn.LSTM's dropout between layers
                    x = nn.functional.dropout(x, lstm.dropout, self.training)
                    gates = nn.functional.linear(x, getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"bias_ih_l{k}")) \
                        + nn.functional.linear(hidden[k], w_hh, getattr(lstm, f"bias_hh_l{k}"))
                i, f, g, o = gates.chunk(4, -1)  # nn.LSTM's gate order
                cell[k] = torch.sigmoid(f) * cell[k] + torch.sigmoid(i) * torch.tanh(g)
                hidden[k] = x = torch.sigmoid(o) * torch.tanh(cell[k])
            attentional, _ = self.attention(x.unsqueeze(1), state["memory"], state["keys"], state["score_bias"])
            feed = self.dropout(attentional.squeeze(1))  # (B, H)
            steps.append(feed)
        new = {"hidden": torch.stack(hidden), "cell": torch.stack(cell), "input_feed": feed}
        return torch.stack(steps, 1), {**state, **new}

    def step(self, prev: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """prev (B,) -> logits (B, V), new state."""
        output, state = self.outputs(prev.unsqueeze(1), state)
        return self.out(output.squeeze(1)), state

    def attention_weights(self, prev: torch.Tensor, state: State) -> torch.Tensor:
        """prev (B,) -> this step's attention weights over the source (B, S) (inspection, tests)."""
        return self._attention_step(self.embedding(prev), self.with_source_state(state))[2]


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

        teacher_forcing 1.0 feeds the whole gold target at once (one LSTM call without
        attention); below 1.0 each step feeds the gold token with that probability, else the
        model's own guess.
        """
        state = self.encoder(src, src_lengths)
        if teacher_forcing >= 1.0:
            return self.decoder.out(self.decoder.outputs(tgt[:, :-1], state)[0])
        steps = tgt.size(1) - 1
        logits = torch.empty(tgt.size(0), steps, self.cfg.tgt_vocab_size, device=tgt.device)
        prev = tgt[:, 0]
        for t in range(steps):
            step_logits, state = self.decoder.step(prev, state)
            logits[:, t] = step_logits
            use_gold = torch.rand(tgt.size(0), device=tgt.device) < teacher_forcing
            prev = torch.where(use_gold, tgt[:, t + 1], step_logits.argmax(-1))
        return logits

    def loss(self, src, src_lengths, tgt, teacher_forcing: float = 1.0,
             label_smoothing: float = 0.0) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over the non-padding target tokens, and their count.

        The fast path projects only real tokens' outputs onto the vocabulary: with a large target
        vocabulary that projection is most of the work, and padding positions would be thrown away.
        """
        gold = tgt[:, 1:]
        mask = gold != PAD_ID  # (B, T-1)
        if teacher_forcing >= 1.0:
            output, _ = self.decoder.outputs(tgt[:, :-1], self.encoder(src, src_lengths))  # (B, T-1, H)
            logits = self.decoder.out(output[mask])  # (N, V)
        else:
            logits = self(src, src_lengths, tgt, teacher_forcing)[mask]
        return nn.functional.cross_entropy(logits.float(), gold[mask], label_smoothing=label_smoothing), int(mask.sum())

    def runtime_adapters(self, device=None) -> tuple["TorchEncoder", "TorchDecoder"]:
        """This model behind the interface of the runtime's session wrappers, so the trainer and
        the export verification decode with the runtime's own greedy and beam loops."""
        device = device or next(self.parameters()).device
        return TorchEncoder(self, device), TorchDecoder(self, device)


class TorchEncoder:
    """Same interface as runtime.sessions.EncoderSession; the state stays on the model's device."""

    def __init__(self, model: Seq2Seq, device):
        self.model, self.device = model.eval(), device

    @torch.no_grad()
    def __call__(self, src_ids, src_lengths) -> State:
        return self.model.encoder(torch.as_tensor(src_ids, device=self.device), torch.as_tensor(src_lengths))


class TorchDecoder:
    """Same interface as runtime.sessions.DecoderSession: step and select over the state."""

    def __init__(self, model: Seq2Seq, device):
        self.model, self.device = model.eval(), device

    @torch.no_grad()
    def step(self, prev_ids, state: State, want_log_probs: bool = False):
        """prev_ids (B,) -> (next_ids (B,), log_probs (B, V) float32 or None, new state), numpy out."""
        logits, state = self.model.decoder.step(torch.as_tensor(prev_ids, device=self.device), state)
        log_probs = torch.log_softmax(logits.float(), -1).cpu().numpy() if want_log_probs else None
        return logits.argmax(-1).cpu().numpy(), log_probs, state

    def select(self, state: State, rows, same_sources: bool = False) -> State:
        return select_rows(state, torch.as_tensor(rows, device=self.device), same_sources,
                           lambda x, axis, idx: x.index_select(axis, idx.to(x.device)))
