"""Parallel corpora: `--data SOURCE` resolution, reading, splitting and batching."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from runtime.tokenizer import Tokenizer
from runtime.vocab import PAD_ID, Vocab, source_ids, target_ids
from trainer import builtin_corpus

KAGGLE_DEFAULT = "rajpulapakura/english-to-french-small-dataset"
KAGGLE_DEFAULT_FILE = "english_french.csv"
TEXT_SUFFIXES = (".tsv", ".txt")


class DataError(Exception):
    """A corpus can't be read; the message is one line meant for the user."""


@dataclass
class Corpus:
    pairs: list[tuple[str, str]]
    source: str  # what was asked for, for the checkpoint's record
    skipped: int = 0  # rows dropped (empty side, wrong column count)


@dataclass
class DataOptions:
    src_col: str = "English"
    tgt_col: str = "French"
    src_lang: str = "en"
    tgt_lang: str = "fr"
    max_pairs: int | None = None


def load_corpus(spec: str, opts: DataOptions | None = None) -> Corpus:
    """Reads `builtin[:train|:test]`, a file or prefix path, or `kaggle[:OWNER/SLUG[/versions/N][:FILE]]`."""
    opts = opts or DataOptions()
    if spec in ("builtin", "builtin:train", "builtin:test"):
        corpus = Corpus(builtin_corpus.pairs(spec.partition(":")[2] or "train"), spec)
    elif spec == "kaggle" or spec.startswith("kaggle:"):
        corpus = _read_path(_kaggle_file(spec), opts, spec)
    elif Path(spec).exists() or _prefix_files(spec, opts):
        corpus = _read_path(Path(spec), opts, spec)
    elif ":" in spec and not os.path.sep in spec.split(":", 1)[0]:
        raise DataError(f"unknown --data scheme {spec.split(':', 1)[0]!r}: use builtin, builtin:test, kaggle:OWNER/SLUG or a file path")
    else:
        raise DataError(f"{spec}: no such file (nor {spec}.{opts.src_lang} + {spec}.{opts.tgt_lang})")
    if opts.max_pairs is not None:
        corpus.pairs = corpus.pairs[: opts.max_pairs]
    if not corpus.pairs:
        raise DataError(f"{spec}: the corpus is empty" + (f" ({corpus.skipped} rows were unusable)" if corpus.skipped else ""))
    return corpus


def _prefix_files(prefix: str, opts: DataOptions) -> tuple[Path, Path] | None:
    src, tgt = Path(f"{prefix}.{opts.src_lang}"), Path(f"{prefix}.{opts.tgt_lang}")
    return (src, tgt) if src.is_file() and tgt.is_file() else None


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8") from None


def _read_path(path: Path, opts: DataOptions, spec: str) -> Corpus:
    prefix = _prefix_files(str(path), opts)
    if prefix and not path.is_file():
        src, tgt = (_read_lines(p) for p in prefix)
        if len(src) != len(tgt):
            raise DataError(f"{prefix[0]} has {len(src)} lines but {prefix[1]} has {len(tgt)}: they must be line-aligned")
        rows = list(zip(src, tgt))
    elif path.is_dir():
        raise DataError(f"{path}: is a folder; pass a .tsv/.txt/.csv file or a PREFIX of PREFIX.{opts.src_lang}/PREFIX.{opts.tgt_lang}")
    elif path.suffix.lower() == ".csv":
        rows = _csv_rows(path, opts)
    else:
        # tatoeba / anki: english<TAB>french[<TAB>attribution]
        rows = [tuple(line.split("\t")[:2]) if line.count("\t") >= 1 else (line,) for line in _read_lines(path)]
    pairs, skipped = [], 0
    for row in rows:
        if len(row) == 2 and row[0].strip() and row[1].strip():
            pairs.append((row[0].strip(), row[1].strip()))
        else:
            skipped += 1
    return Corpus(pairs, spec, skipped)


def _csv_rows(path: Path, opts: DataOptions) -> list[tuple]:
    lines = _read_lines(path)
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return []
    missing = [c for c in (opts.src_col, opts.tgt_col) if c not in header]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} in the header {header}; choose with --src-col/--tgt-col")
    i, j = header.index(opts.src_col), header.index(opts.tgt_col)
    return [(row[i], row[j]) if len(row) == len(header) else () for row in reader]


def _kaggle_file(spec: str) -> Path:
    """Resolves through kagglehub (its cache first); one clear sentence when that is impossible."""
    rest = spec.partition(":")[2]
    handle, _, filename = rest.partition(":")
    handle = handle or KAGGLE_DEFAULT
    if not filename and handle.split("/versions/")[0] == KAGGLE_DEFAULT:
        filename = KAGGLE_DEFAULT_FILE
    try:
        import kagglehub

        folder = Path(kagglehub.dataset_download(handle))
    except Exception as e:  # kagglehub raises many types (network, auth, not found)
        if "Connection" in type(e).__name__ or "Timeout" in type(e).__name__:
            reason = "Kaggle is unreachable"
        else:
            reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise DataError(
            f"kaggle dataset {handle!r} could not be downloaded and is not in the kagglehub cache ({reason}); "
            "download the file yourself and pass its path with --data PATH"
        ) from None
    if filename:
        path = folder / filename
        if not path.is_file():
            raise DataError(f"kaggle dataset {handle!r} has no file {filename!r}")
        return path
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".csv", ".tsv", ".txt"))
    if len(files) != 1:
        raise DataError(f"kaggle dataset {handle!r} has {len(files)} text files; name one: --data kaggle:{handle}:FILE")
    return files[0]


def split_valid(pairs: list, fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic held-out split: the same seed and corpus give the same validation set."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(pairs), generator=g).tolist()
    n_valid = max(1, int(len(pairs) * fraction)) if len(pairs) > 1 else 0
    valid = [pairs[i] for i in sorted(order[:n_valid])]
    train = [pairs[i] for i in sorted(order[n_valid:])]
    return train, valid


@dataclass
class Encoded:
    src: list[list[int]]
    tgt: list[list[int]]

    def __len__(self) -> int:
        return len(self.src)


def encode_pairs(pairs, tokenizer: Tokenizer, src_vocab: Vocab, tgt_vocab: Vocab, reverse: bool, max_src: int) -> Encoded:
    src = [source_ids(tokenizer.tokenize(s), src_vocab, reverse, max_src) for s, _ in pairs]
    tgt = [target_ids(tokenizer.tokenize(t), tgt_vocab) for _, t in pairs]
    return Encoded(src, tgt)


def pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ids (B, T) padded with <pad>, lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lengths


def batches(data: Encoded, batch_size: int, generator: torch.Generator | None = None):
    """Yields (src, src_lengths, tgt) batches.

    With a generator: shuffled, then sorted by length inside pools of 50 batches so a batch
    carries little padding, then the batches shuffled again. Without: in corpus order.
    """
    n = len(data)
    if generator is None:
        order = list(range(n))
        groups = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    else:
        order = torch.randperm(n, generator=generator).tolist()
        pool = batch_size * 50
        groups = []
        for i in range(0, n, pool):
            chunk = sorted(order[i : i + pool], key=lambda k: len(data.src[k]))
            groups += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        groups = [groups[k] for k in torch.randperm(len(groups), generator=generator).tolist()]
    for idx in groups:
        src, src_len = pad([data.src[k] for k in idx])
        tgt, _ = pad([data.tgt[k] for k in idx])
        yield src, src_len, tgt
