"""What a shortlist must hold for the bar (greedy output identical to the whole vocabulary's): the
share of test sentences whose whole-vocabulary greedy output lies entirely inside their batch-1
candidates (exactly the sentences a batch-1 shortlist leaves unchanged: at each step the full
argmax is a candidate, so it is also the candidates' argmax), for lists counted two ways:

- reference: source pieces against the training targets (what `trainer fit` builds, Dice);
- model: source pieces against the model's own greedy output on the training sources (decoded
  here with the runtime), so the list holds what the model writes, its mistakes included;
- both: the two counts together.

    python benchmarks/shortlist_coverage.py --checkpoint RUN/checkpoint.pth --folder RUN/onnx --task "tatoeba en-fr"
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import TASKS, emit, machine, require_shared

SIZES = [(500, 50), (1000, 100), (2000, 100)]


class CountedPairs:
    """The sentence pairs build_shortlist counts (its `data`): lists of source and target id arrays."""

    def __init__(self, src: list[np.ndarray], tgt: list[np.ndarray]):
        self.src, self.tgt = src, tgt

    def __len__(self) -> int:
        return len(self.src)

    def side_ids(self, side: str, idx: np.ndarray) -> list[np.ndarray]:
        rows = self.src if side == "src" else self.tgt
        return [rows[i] for i in idx]


def training_pairs(checkpoint: str, cache_dir: str | None):
    from dataclasses import replace

    from runtime.tokenizer import from_state
    from runtime.vocab import Vocab
    from trainer.checkpoint import load_checkpoint
    from trainer.config import TrainConfig
    from trainer.distributed import Dist
    from trainer.train import prepare_data

    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(ckpt["train_config"])
    if cache_dir:
        cfg = replace(cfg, data=replace(cfg.data, cache_dir=cache_dir))
    train = prepare_data(cfg, from_state(ckpt["tokenizer"]), Dist(), (Vocab(ckpt["src_vocab"]), Vocab(ckpt["tgt_vocab"])))[0]
    idx = np.arange(len(train))
    return train.side_ids("src", idx), train.side_ids("tgt", idx)


def greedy(translator, rows: list[list[int]]) -> list[np.ndarray]:
    """Source id rows (<sos>, reversed as the model reads them, <eos>) -> greedy target ids."""
    from runtime.decode import decode_rows

    out = decode_rows(translator.encoder, translator.decoder, dict(enumerate(rows)), translator.config.decoding,
                      batch_size=128)
    return [np.array(out[i][0][0], dtype=np.int64) for i in range(len(rows))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--folder", required=True, help="the checkpoint exported (fp32), to decode with")
    ap.add_argument("--task", default="tatoeba en-fr", choices=list(TASKS))
    ap.add_argument("--cache-dir", help="the run's token cache, if not where its config says")
    ap.add_argument("--quick", action="store_true", help="5,000 training pairs, 200 test sentences")
    args = ap.parse_args()
    require_shared()
    import runtime
    from runtime import Translator
    from runtime.shortlist import Shortlist
    from runtime.vocab import EOS_ID, SOS_ID
    from trainer.data import DataOptions, load_corpus
    from trainer.shortlist import build_shortlist

    runtime.share_thread_pool()
    t = Translator(args.folder, device="cpu", shortlist=False)
    cfg = t.config
    src, tgt = training_pairs(args.checkpoint, args.cache_dir)
    if args.quick:
        src, tgt = src[:5000], tgt[:5000]
    start = time.perf_counter()
    rows = []
    for s in src:
        words = [int(x) for x in s[: cfg.max_source_len - 2]]
        rows.append([SOS_ID] + (words[::-1] if cfg.reverse_source else words) + [EOS_ID])
    hyp = greedy(t, rows)
    decode_s = time.perf_counter() - start
    task = TASKS[args.task]
    sources = [p[0] for p in load_corpus(str(task["test"]), DataOptions(src_lang=task["src"], tgt_lang=task["tgt"])).pairs]
    test_rows = [ids for ids in (t.encode(s)[0] for s in sources[: 200 if args.quick else None]) if ids]
    test_out = greedy(t, test_rows)
    counted = {"reference": CountedPairs(src, tgt), "model": CountedPairs(src, hyp),
               "both": CountedPairs(src + src, tgt + hyp)}
    results = {}
    for label, data in counted.items():
        for frequent, per_source in SIZES:
            shortlist = Shortlist(*build_shortlist(data, cfg.src_vocab_size, cfg.tgt_vocab_size, frequent, per_source),
                                  cfg.tgt_vocab_size)
            held, sizes = 0, []
            for row, out in zip(test_rows, test_out):
                candidates = shortlist.candidates(np.array([row]))
                sizes.append(len(candidates))
                held += bool(np.isin(out, candidates).all())
            results[f"{label} {frequent}+{per_source}"] = {"coverage_b1": round(held / len(test_rows), 4),
                                                           "candidates_b1": round(float(np.mean(sizes)), 1)}
            print(f"{label:9s} {frequent:4d}+{per_source:3d}: identical at batch 1 {held / len(test_rows):.1%}, "
                  f"candidates {np.mean(sizes):.0f}", flush=True)
    emit({"results": results, "task": args.task, "training_pairs": len(src), "test_sentences": len(test_rows),
          "decode_training_s": round(decode_s, 1), "checkpoint": args.checkpoint, "machine": machine()})


if __name__ == "__main__":
    main()
