"""The attention decoder's training step: why trainer/model.py keeps two LSTM implementations.

With input feeding, each target step's LSTM input depends on the last step's attentional state, so
training steps the decoder token by token. trainer/model.py does that with the LSTM's own weights
(`_input_feeding_steps`: the embeddings' share of the first layer's input projection for all steps
in one product); the exported one-step graph needs nn.LSTM (an ONNX LSTM node, which int8
quantizes as DynamicQuantizeLSTM). This times a whole training step (forward, backward, Adam) at
the quickstart's sizes with both, on random data.

    python benchmarks/train_step.py            # 30 steps each, after 3 of warm-up
"""
from __future__ import annotations

import argparse
import time

from common import emit, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=66, help="sentences per step (the quickstart's mean)")
    ap.add_argument("--quick", action="store_true", help="5 steps each")
    args = ap.parse_args()
    if args.quick:
        args.steps = 5
    import torch

    from trainer.model import ModelConfig, Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(src_vocab_size=1400, tgt_vocab_size=1800))  # the quickstart's sizes, defaults
    b, s, t = args.batch, 9, 10
    src, lengths = torch.randint(4, 1400, (b, s)), torch.full((b,), s)
    tgt = torch.randint(4, 1800, (b, t))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    decoder = type(model.decoder)
    hand_stepped = decoder._input_feeding_steps

    def one_call_per_step(self, emb, state):  # nn.LSTM called once per target token
        outs = []
        for k in range(emb.size(1)):
            feed, state, _ = self._attention_step(emb[:, k], state)
            outs.append(feed)
        return torch.stack(outs, 1), state

    def ms_per_step() -> float:
        for n in (3, args.steps):
            start = time.perf_counter()
            for _ in range(n):
                loss, _ = model.loss(src, lengths, tgt)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return round(1000 * (time.perf_counter() - start) / args.steps, 1)

    rows = {}
    for name, steps in (("hand-stepped (trainer/model.py)", hand_stepped), ("nn.LSTM, one call per step", one_call_per_step)):
        decoder._input_feeding_steps = steps
        rows[name] = ms_per_step()
        print(f"{name:34s} {rows[name]:8.1f} ms/step", flush=True)
    decoder._input_feeding_steps = hand_stepped
    ratio = rows["nn.LSTM, one call per step"] / rows["hand-stepped (trainer/model.py)"]
    print(f"hand-stepped is {ratio:.2f}x faster (batch {b}, source {s}, target {t}, threads {torch.get_num_threads()})")
    emit({"ms_per_step": rows, "ratio": round(ratio, 2), "batch": b, "steps": args.steps, "machine": machine()})


if __name__ == "__main__":
    main()
