"""SentencePiece models for `trainer fit --vocab sentencepiece`, trained on the training split only.

One model per side: the encoder and decoder have their own embeddings, so a joint model would
only spend each side's --vocab-size on the other language's pieces (and make the target softmax,
the largest layer, pay for source-only pieces). The specials sit at SentencePiece ids 0..3 as
<pad> <unk> <sos> <eos>, so a piece's SentencePiece id is its vocabulary id.

Models are cached in the token-cache folder, keyed by the corpus content and every setting that
changes them, so a second run (or a resumed one) on the same data reuses them.
"""
from __future__ import annotations

import io
import shutil
import warnings
from pathlib import Path

from runtime.atomic import write_folder
from runtime.tokenizer import SIDES, SentencePieceTokenizer
from runtime.vocab import EOS, EOS_ID, PAD, PAD_ID, SOS, SOS_ID, UNK, UNK_ID
from trainer.config import DataConfig
from trainer.data import CacheWarning, DataError, PairStream, _Source, split_rows
from trainer.token_cache import cache_key, default_workers, prepare_pair

MAX_TRAINING_SENTENCES = 2_000_000  # per side; sentencepiece samples this many from a larger split


def train_model(text_file: Path, vocab_size: int, model_type: str, lowercase: bool) -> bytes:
    """A SentencePiece model (serialized) trained on one sentence per line of text_file."""
    import sentencepiece as spm

    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            input=str(text_file), model_writer=out, vocab_size=vocab_size, model_type=model_type,
            # a small corpus can't fill a large vocabulary: take what it has instead of failing
            hard_vocab_limit=False,
            character_coverage=1.0,  # every character of the training text gets a piece
            split_digits=True,  # numbers go piece by piece, so any number can be copied
            normalization_rule_name="nmt_nfkc_cf" if lowercase else "nmt_nfkc",
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=SOS_ID, eos_id=EOS_ID,
            pad_piece=PAD, unk_piece=UNK, bos_piece=SOS, eos_piece=EOS,
            input_sentence_size=MAX_TRAINING_SENTENCES, shuffle_input_sentence=True,
            num_threads=default_workers(), minloglevel=2,
        )
    except RuntimeError as e:
        raise DataError(f"sentencepiece could not be trained: {str(e).splitlines()[0][:200]}") from None
    return out.getvalue()


def _train(d: DataConfig, seed: int, source: _Source, tmp: Path) -> dict[str, bytes]:
    """Writes the training split's sides to text files, then trains one model on each."""
    train_rows = None
    if not d.valid:  # the same split as the trainer's (split_rows on the usable pairs)
        n = sum(1 for _ in PairStream(source))
        train_rows = set(split_rows(n, d.valid_fraction, seed)[0].tolist())
    files = {side: tmp / f"{side}.txt" for side in SIDES}
    handles = {side: open(files[side], "w", encoding="utf-8") for side in SIDES}
    text_cfg = d.text_config()
    stream = PairStream(source)
    try:
        for i, pair in enumerate(stream):
            if train_rows is None or i in train_rows:
                # prepared as the training pairs are (one line each: preparing collapses line breaks)
                for side, text in zip(SIDES, prepare_pair(*pair, text_cfg)):
                    handles[side].write(text + "\n")
    finally:
        for f in handles.values():
            f.close()
    if not stream.count:  # SentencePiece would only say its input is empty
        raise stream.no_pair_error()
    return {side: train_model(files[side], d.vocab_size, d.subword_model, d.lowercase_text()) for side in SIDES}


def sentencepiece_tokenizer(d: DataConfig, seed: int, cache_dir: Path, build: bool = True) -> SentencePieceTokenizer | None:
    """The run's SentencePiece tokenizer: read from cache_dir if an earlier run trained it on the
    same content with the same settings, else trained now and saved there (build=False: only read;
    None if absent)."""
    source = _Source(d.source, d.options())
    settings = {"kind": "sentencepiece", "vocab_size": d.vocab_size, "model_type": d.subword_model,
                "lowercase": d.lowercase_text(), "max_pairs": d.max_pairs,
                "columns": [d.src_col, d.tgt_col], "langs": [d.src_lang, d.tgt_lang],
                "split": None if d.valid else [d.valid_fraction, seed], "text": d.text_config().to_dict()}
    folder = Path(cache_dir) / f"sentencepiece-{cache_key(source.digest(), settings)}"
    names = {side: folder / f"{side}.model" for side in SIDES}
    if all(p.is_file() for p in names.values()):
        try:
            return SentencePieceTokenizer(names["src"].read_bytes(), names["tgt"].read_bytes(), d.lowercase_text())
        except (ValueError, OSError) as e:  # damaged in the cache: trained again, never trusted
            warnings.warn(f"SentencePiece models in {folder} are damaged ({e}): training them again", CacheWarning,
                          stacklevel=2)
    if not build:
        return None

    def write(tmp: Path) -> None:
        # the training text goes inside the temporary folder: a killed run's is cleaned up with it
        text_dir = tmp / "text"
        text_dir.mkdir()
        models = _train(d, seed, source, text_dir)
        shutil.rmtree(text_dir)
        for side in SIDES:
            (tmp / f"{side}.model").write_bytes(models[side])

    write_folder(folder, write, force=True)
    return SentencePieceTokenizer(names["src"].read_bytes(), names["tgt"].read_bytes(), d.lowercase_text())
