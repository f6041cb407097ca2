"""`trainer evaluate`: loss, perplexity, BLEU and chrF (sacrebleu) with PyTorch decoding."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from runtime.model_format import DecodingDefaults
from runtime.pipeline import TextCodec, translate_texts
from trainer.checkpoint import codec_of, model_from_checkpoint
from trainer.config import EvalConfig
from trainer.data import DataOptions, PairIds, batch_groups, encode_pairs, load_corpus
from trainer.distributed import Dist
from trainer.model import Seq2Seq


@dataclass
class EvalResult:
    loss: float
    ppl: float
    bleu: float
    chrf: float
    case_insensitive: bool  # the model lower-cases: bleu/chrf are case-insensitive, the cased ones say little
    bleu_cased: float
    chrf_cased: float
    samples: list[tuple[str, str, str]]  # source, reference, hypothesis
    n: int


def loss_on(model: Seq2Seq, data: PairIds, batch_size: int, device: torch.device, dist: Dist = Dist()) -> float:
    """Mean cross-entropy per target token (padding ignored), teacher-forced, no dropout; each
    process scores its share of every batch and the sums are added over processes."""
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for group in batch_groups(data.src_lengths, batch_size):
            share = group[dist.rank :: dist.world]
            if len(share) == 0:
                continue
            src, src_len, tgt = data.batch(share)
            loss, n = model.loss(src.to(device), src_len, tgt.to(device), teacher_forcing=1.0)
            total += loss.item() * n
            tokens += n
    total, tokens = dist.all_sum([total, tokens], device)
    return total / tokens if tokens else float("nan")


def torch_translate(model: Seq2Seq, codec: TextCodec, texts: list[str], batch_size: int = 64,
                    device: torch.device | str = "cpu", max_len: int | None = None, beam_size: int = 1,
                    length_penalty: float = 0.0) -> list[str]:
    """Translates with the PyTorch model through the runtime's own pipeline (sentence splitting,
    preparation, batching, length rule, greedy and beam loops, detokeniser): only the encoder and
    decoder calls differ."""
    encoder, decoder = model.to(device).runtime_adapters(torch.device(device))
    results, _ = translate_texts(codec, encoder, decoder, texts, DecodingDefaults(), max_len=max_len,
                                 batch_size=batch_size, beam_size=beam_size, length_penalty=length_penalty)
    return [r[0][0] for r in results]


def evaluate(ckpt: dict, cfg: EvalConfig = EvalConfig(), opts: DataOptions | None = None) -> EvalResult:
    """The checkpoint on cfg.data (read as opts says): loss and perplexity, BLEU and chrF of its
    translations through the runtime's pipeline, and cfg.samples sample translations."""
    model, src_vocab, tgt_vocab, tokenizer = model_from_checkpoint(ckpt)
    codec = codec_of(ckpt, model, src_vocab, tgt_vocab, tokenizer)
    model.to(cfg.device)
    pairs = load_corpus(cfg.data, opts).pairs
    encoded = encode_pairs(pairs, tokenizer, src_vocab, tgt_vocab, model.cfg.reverse_source, model.cfg.max_source_len,
                           codec.text)
    loss = loss_on(model, encoded, cfg.batch_size, torch.device(cfg.device))
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    hyps = torch_translate(model, codec, sources, cfg.batch_size, cfg.device, beam_size=cfg.beam_size,
                           length_penalty=cfg.length_penalty)
    bleu, chrf = scores(hyps, refs, lowercase=True)  # comparable across vocabularies (and with earlier numbers)
    bleu_cased, chrf_cased = scores(hyps, refs, lowercase=False)
    samples = list(zip(sources, refs, hyps))[:cfg.samples]
    return EvalResult(loss, math.exp(min(loss, 50)), bleu, chrf, tokenizer.lowercase, bleu_cased, chrf_cased, samples,
                      len(pairs))


def scores(hyps: list[str], refs: list[str], lowercase: bool) -> tuple[float, float]:
    """sacrebleu's corpus BLEU (13a tokenization) and chrF, case-insensitive if lowercase."""
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(hyps, [refs], lowercase=lowercase).score
    fold = (lambda xs: [x.lower() for x in xs]) if lowercase else (lambda xs: xs)
    return bleu, sacrebleu.corpus_chrf(fold(hyps), [fold(refs)]).score
