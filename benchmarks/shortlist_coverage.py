"""What a shortlist must hold for the bar (greedy output identical to the whole vocabulary's): the
share of test sentences whose whole-vocabulary greedy output lies entirely inside their batch-1
candidates (exactly the sentences a batch-1 shortlist leaves unchanged: at each step the full
argmax is a candidate, so it is also the candidates' argmax), for lists counted two ways:

- reference: source pieces against the training targets (what `trainer fit` builds, Dice);
- model: source pieces against the model's own greedy output on the training sources (as
  `trainer shortlist --from-model` builds them), so the list holds what the model writes, its
  mistakes included.

    python benchmarks/shortlist_coverage.py --checkpoint RUN/checkpoint.pth --folder RUN/onnx --task "tatoeba en-fr"
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import TASKS, emit, machine, require_shared

# per-source lists, then fixed ones (per_source 0: the same candidates for every sentence, format 7)
SIZES = [(500, 50), (1000, 100), (2000, 100), (3000, 0), (4000, 0), (5116, 0), (6000, 0)]


class FirstPairs:
    """The first n pairs of a training set (--quick); everything else as the set has it."""

    def __init__(self, data, n: int):
        self.data, self.n = data, min(n, len(data))

    def __len__(self) -> int:
        return self.n

    def __getattr__(self, name: str):
        return getattr(self.data, name)


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
    from runtime.decode import decode_rows
    from runtime.shortlist import Shortlist
    from trainer.checkpoint import load_checkpoint, model_from_checkpoint
    from trainer.data import DataOptions, load_corpus
    from trainer.shortlist import ModelOutputPairs, build_shortlist, model_output, training_pairs

    runtime.share_thread_pool()
    t = Translator(args.folder, device="cpu", shortlist=False)
    cfg = t.config
    ckpt = load_checkpoint(args.checkpoint)
    train = training_pairs(ckpt, args.cache_dir)
    if args.quick:
        train = FirstPairs(train, 5000)
    start = time.perf_counter()
    outputs = model_output(model_from_checkpoint(ckpt)[0], train)  # as `trainer shortlist --from-model`
    decode_s = time.perf_counter() - start
    task = TASKS[args.task]
    sources = [p[0] for p in load_corpus(str(task["test"]), DataOptions(src_lang=task["src"], tgt_lang=task["tgt"])).pairs]
    test_rows = [ids for ids in (t.encode(s)[0] for s in sources[: 200 if args.quick else None]) if ids]
    decoded = decode_rows(t.encoder, t.decoder, dict(enumerate(test_rows)), cfg.decoding)
    test_out = [np.array(decoded[k][0][0], dtype=np.int64) for k in range(len(test_rows))]
    counted = {"reference": train, "model": ModelOutputPairs(train, outputs)}
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
    emit({"results": results, "task": args.task, "training_pairs": len(train), "test_sentences": len(test_rows),
          "decode_training_s": round(decode_s, 1), "checkpoint": args.checkpoint, "machine": machine()})


if __name__ == "__main__":
    main()
