"""Target tokens/s of `trainer fit` against the reference design's training loop.

The reference (implemented here, not in the product): batches in random order padded to their
longest sentence (no length bucketing), the encoder without packing, then one decoder call per
target position with teacher forcing 0.5 (one coin per step for the whole batch), outputs stored
in a preallocated tensor. Same model size, batch size and data; a few hundred steps each.
"""
from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

from common import TATOEBA, emit, machine, require_shared


def reference_steps(model, data, batch_size, steps, device, seed=0) -> tuple[int, float]:
    import torch
    import torch.nn as nn

    rng = random.Random(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=0)
    model.train()
    tokens, start = 0, time.perf_counter()
    for _ in range(steps):
        idx = rng.sample(range(len(data)), batch_size)
        src, _, tgt = data.batch(idx)
        src, tgt = src.to(device), tgt.to(device)
        emb = model.encoder.dropout(model.encoder.embedding(src))
        _, (hidden, cell) = model.encoder.lstm(emb)
        outputs = torch.zeros(tgt.size(0), tgt.size(1), model.cfg.tgt_vocab_size, device=device)
        prev = tgt[:, 0]
        for t in range(1, tgt.size(1)):
            logits, state = model.decoder.step(prev, {"hidden": hidden, "cell": cell})
            hidden, cell = state["hidden"], state["cell"]
            outputs[:, t] = logits
            prev = tgt[:, t] if rng.random() < 0.5 else logits.argmax(1)
        loss = loss_fn(outputs[:, 1:].reshape(-1, outputs.size(-1)), tgt[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int((tgt[:, 1:] != 0).sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="20 steps each")
    args = ap.parse_args()
    require_shared()
    import torch

    from runtime.tokenizer import Tokenizer
    from trainer.distributed import Dist, pick_device
    from trainer.config import AugmentConfig, TrainConfig
    from trainer.model import Seq2Seq
    from trainer.train import _LossModule, prepare_data, train_epoch

    if args.quick:
        args.steps = 20
    torch.manual_seed(0)
    device = pick_device(args.device)
    # the configuration docs/benchmarks.md names: the paper's model (no attention: the reference loop
    # carries hidden and cell only), 2 x 512, embeddings 64, the word vocabulary, sentence batches
    cfg = TrainConfig.from_flat(data=str(TATOEBA / "train.tsv"), vocab="word", min_freq=2, batch_size=args.batch_size,
                                batch_tokens=0, augment=AugmentConfig.off(), attention="none", hidden_dim=512,
                                emb_dim=64, max_pairs=args.steps * args.batch_size + 200, valid_fraction=0.01,
                                out="artifacts/bench/train")
    train, _, sv, tv, _, _ = prepare_data(cfg, Tokenizer(), Dist())
    mcfg = replace(cfg.model, src_vocab_size=len(sv), tgt_vocab_size=len(tv))
    results = {}
    # trainer fit's own epoch loop: bucketed batches, packed encoder, whole-target decoder call
    model = Seq2Seq(mcfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    module = _LossModule(model)
    train_epoch(module, opt, scaler, train, cfg, device, torch.Generator().manual_seed(0), Dist(),
                deadline=time.perf_counter() + 3)  # warm-up
    _, tokens, seconds, _, _ = train_epoch(module, opt, scaler, train, cfg, device, torch.Generator().manual_seed(1), Dist())
    results["trainer_fit"] = {"tgt_tokens_per_s": round(tokens / seconds), "tokens": tokens, "seconds": round(seconds, 2)}
    model = Seq2Seq(mcfg).to(device)
    reference_steps(model, train, args.batch_size, 3, device)  # warm-up
    tokens, seconds = reference_steps(model, train, args.batch_size, args.steps, device)
    results["reference_tf0.5"] = {"tgt_tokens_per_s": round(tokens / seconds), "tokens": tokens, "seconds": round(seconds, 2)}
    speedup = results["trainer_fit"]["tgt_tokens_per_s"] / results["reference_tf0.5"]["tgt_tokens_per_s"]
    for name, r in results.items():
        print(f"{name:18s} {r['tgt_tokens_per_s']:8d} tgt tok/s  ({r['tokens']} tokens in {r['seconds']} s)")
    print(f"speedup {speedup:.2f}x  (model {mcfg.layers}x{mcfg.hidden_dim}, emb {mcfg.emb_dim}, vocab {len(sv)}/{len(tv)}, "
          f"batch {args.batch_size}, device {device})")
    emit({"speedup_train": round(speedup, 2), "results": results, "steps": args.steps, "batch_size": args.batch_size,
          "vocab": [len(sv), len(tv)], "device": str(device), "machine": machine()})


if __name__ == "__main__":
    main()
