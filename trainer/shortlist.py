"""The lexical shortlist a model folder carries (runtime/shortlist.py reads it): for each source id
the target ids it is most associated with in the training pairs, plus the most frequent target ids.

Association is the Dice coefficient of co-occurrence counts, 2 c(s, t) / (c(s) + c(t)), counted over
the token pairs of each sentence pair: it favours a source piece's translations over target pieces
that are merely frequent (those are in the frequent list anyway). Counting is sparse (np.unique over
s * V + t keys, chunk by chunk), so memory grows with the pairs seen, not with V squared.

The targets counted are the training targets, or (from_model) the model's own greedy output on the
training sources: a list of what the model writes, its mistakes included, leaves far more
sentences exactly as the whole vocabulary translates them (at batch 1 on the 20-minute tatoeba
model, 2000+100: 95.0% against 88.7%; docs/benchmarks.md, benchmarks/shortlist_coverage.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from runtime.vocab import SPECIAL_IDS

CHUNK = 20_000  # sentence pairs per counting step


@dataclass
class ShortlistConfig:
    # The default is a fixed list (no per-source lists: format 7), the pieces the model itself writes
    # most often on its training sources (those it never writes are left out whatever the size): on
    # the 20-minute tatoeba and multi30k de-en models 5,116 leave 98.7% of test translations exactly as
    # the whole vocabulary gives them, BLEU within 0.1, and a step multiplies by 64% of the 8,000 rows
    # or fewer, prepacked (docs/benchmarks.md, "A fixed shortlist"; 4,092 lost 0.31 BLEU on tatoeba).
    # 5,116 + the 4 specials = 5,120 rows, a multiple of the decoder's blocked ArgMax (64). Per-source
    # lists (per_source > 0) differ per batch: their rows come to the decoder as inputs.
    frequent: int = 5116
    per_source: int = 0
    from_model: bool = True  # count the model's own greedy output on the training sources, not the targets

    def covers(self, tgt_vocab_size: int) -> bool:
        """Whether the list holds every target id anyway (a vocabulary this small has nothing to skip)."""
        return self.per_source == 0 and self.frequent + len(SPECIAL_IDS) >= tgt_vocab_size


def _pair_keys(src: list[np.ndarray], tgt: list[np.ndarray], tgt_size: int) -> np.ndarray:
    """Every (source id, target id) of each sentence pair, as s * tgt_size + t, int64."""
    la = np.array([len(s) for s in src])
    lb = np.array([len(t) for t in tgt])
    if not la.size or not (la * lb).sum():
        return np.zeros(0, dtype=np.int64)
    src_flat, tgt_flat = np.concatenate(src).astype(np.int64), np.concatenate(tgt).astype(np.int64)
    reps = np.repeat(lb, la)  # each source token pairs with its sentence's lb target tokens
    tgt_start = np.repeat(np.cumsum(lb) - lb, la)  # where that sentence's targets start
    blocks = np.cumsum(reps) - reps
    within = np.arange(reps.sum()) - np.repeat(blocks, reps)
    return np.repeat(src_flat, reps) * tgt_size + tgt_flat[np.repeat(tgt_start, reps) + within]


def build_shortlist(data, src_size: int, tgt_size: int, frequent: int, per_source: int) -> tuple[np.ndarray, np.ndarray]:
    """data: trainer.data.PairIds (training pairs as vocabulary ids) -> (frequent (N,), by_source
    (src_size, per_source)) int32, -1 padding rows with fewer associated targets."""
    keys, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    src_count, tgt_count = np.zeros(src_size, dtype=np.int64), np.zeros(tgt_size, dtype=np.int64)
    for start in range(0, len(data), CHUNK):
        idx = np.arange(start, min(start + CHUNK, len(data)))
        src, tgt = data.side_ids("src", idx), data.side_ids("tgt", idx)
        for side, count in ((src, src_count), (tgt, tgt_count)):
            if side:
                count += np.bincount(np.concatenate(side).astype(np.int64), minlength=len(count))
        chunk_keys, chunk_counts = np.unique(_pair_keys(src, tgt, tgt_size), return_counts=True)
        keys, inverse = np.unique(np.concatenate([keys, chunk_keys]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([counts, chunk_counts])).astype(np.int64)
    tgt_count[list(SPECIAL_IDS.values())] = 0  # the specials are always candidates (runtime/shortlist.py)
    top = np.argsort(-tgt_count, kind="stable")[:frequent]
    top = top[tgt_count[top] > 0]
    s, t = np.divmod(keys, tgt_size)
    keep = ~np.isin(t, top) & (t >= len(SPECIAL_IDS))
    s, t, c = s[keep], t[keep], counts[keep]
    dice = 2 * c / (src_count[s] + tgt_count[t])
    order = np.lexsort((t, -dice, s))  # by source id, then best first (ties: smaller target id)
    s, t = s[order], t[order]
    rank = np.arange(len(s)) - np.searchsorted(s, s)  # position within its source id's run
    by_source = np.full((src_size, per_source), -1, dtype=np.int32)
    within = rank < per_source
    by_source[s[within], rank[within]] = t[within]
    return np.sort(top).astype(np.int32), by_source


class ModelOutputPairs:
    """Training pairs whose target side is the model's greedy output for their source (what
    build_shortlist counts with from_model): side_ids as trainer.data.PairIds has it."""

    def __init__(self, data, outputs: list[np.ndarray]):
        self.data, self.outputs = data, outputs

    def __len__(self) -> int:
        return len(self.data)

    def side_ids(self, side: str, idx: np.ndarray) -> list[np.ndarray]:
        return self.data.side_ids("src", idx) if side == "src" else [self.outputs[i] for i in idx]


def model_output(model, data, batch_size: int = 128) -> list[np.ndarray]:
    """The model's greedy output (target ids, <eos> excluded) for every source of data (as the model
    reads them: data.source_rows), through the runtime's own decoding loop (the model's PyTorch adapters)."""
    import torch

    from runtime.decode import decode_rows
    from runtime.model_format import DecodingDefaults

    encoder, decoder = model.eval().runtime_adapters(torch.device("cpu"))
    out = []
    for start in range(0, len(data), CHUNK):
        idx = np.arange(start, min(start + CHUNK, len(data)))
        decoded = decode_rows(encoder, decoder, dict(enumerate(data.source_rows(idx))), DecodingDefaults(),
                              batch_size=batch_size)
        out += [np.array(decoded[k][0][0], dtype=np.int64) for k in range(len(idx))]
    return out


def shortlist_state(data, src_size: int, tgt_size: int, cfg: ShortlistConfig | None = None) -> dict:
    """What a checkpoint keeps under "shortlist" (tensors and plain values: weights_only loads it)."""
    import torch

    cfg = cfg or ShortlistConfig()
    frequent, by_source = build_shortlist(data, src_size, tgt_size, cfg.frequent, cfg.per_source)
    return {"frequent": torch.from_numpy(frequent), "by_source": torch.from_numpy(by_source), "sizes": asdict(cfg)}


def training_pairs(ckpt: dict, cache_dir: str | None = None):
    """A loaded checkpoint's training pairs as its vocabularies' ids (trainer.data.PairIds), from its
    run's token cache (rebuilt if gone; cache_dir: the cache if not where the run's config says)."""
    from dataclasses import replace

    from runtime.tokenizer import from_state
    from runtime.vocab import Vocab
    from trainer.config import TrainConfig
    from trainer.distributed import Dist
    from trainer.train import prepare_data

    train_cfg = TrainConfig.from_dict(ckpt["train_config"])
    if cache_dir:
        train_cfg = replace(train_cfg, data=replace(train_cfg.data, cache_dir=cache_dir))
    vocabs = (Vocab(ckpt["src_vocab"]), Vocab(ckpt["tgt_vocab"]))
    return prepare_data(train_cfg, from_state(ckpt["tokenizer"]), Dist(), vocabs)[0]


def add_shortlist(checkpoint, cfg: ShortlistConfig, cache_dir: str | None = None, train=None) -> dict:
    """Rebuilds the checkpoint's shortlist from its run's training data (train: those pairs, when the
    caller has them; with cfg.from_model, its sources decoded by the model) and saves the checkpoint
    again (temporary file, then rename) -> the sizes, and the mean number of target ids per source
    id that the data filled."""
    from trainer.checkpoint import atomic_save, load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    train = train if train is not None else training_pairs(ckpt, cache_dir)
    if cfg.from_model:
        train = ModelOutputPairs(train, model_output(model_from_checkpoint(ckpt)[0], train))
    ckpt["shortlist"] = shortlist_state(train, len(ckpt["src_vocab"]), len(ckpt["tgt_vocab"]), cfg)
    ckpt.pop("path", None)  # added by load_checkpoint, not saved
    atomic_save(ckpt, checkpoint)
    filled = (ckpt["shortlist"]["by_source"] >= 0).sum(1).float().mean().item() if cfg.per_source else 0.0
    return {**ckpt["shortlist"]["sizes"], "mean_per_source": filled}
