"""Parallel corpora: `--data SOURCE` resolution, reading, splitting and batching."""
from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from runtime.prepare import TextConfig
from runtime.vocab import EOS_ID, SOS_ID, UNK_ID, Vocab
from trainer import builtin_corpus, token_cache
from trainer.config import DataOptions
from trainer.token_cache import TokenCache, gather

KAGGLE_DEFAULT = "rajpulapakura/english-to-french-small-dataset"
KAGGLE_DEFAULT_FILE = "english_french.csv"
# tokenizing with worker processes pays from about here (measured: docs/benchmarks.md "Corpora
# larger than memory")
POOL_MIN_BYTES = 8 << 20


class DataError(Exception):
    """A corpus can't be read; the message is one line meant for the user."""


class CacheWarning(UserWarning):
    """A cached file was damaged and is being rebuilt."""


@dataclass
class Corpus:
    pairs: list[tuple[str, str]]
    source: str  # what was asked for, for the checkpoint's record
    skipped: int = 0  # rows dropped (empty side, wrong column count)


class _Source:
    """A resolved --data SOURCE: the builtin pairs, or the file(s) to stream, and how to read them."""

    def __init__(self, spec: str, opts: DataOptions):
        self.spec, self.opts = spec, opts
        self.builtin: list[tuple[str, str]] | None = None
        self.files: list[Path] = []
        self.kind = "builtin"
        if spec in ("builtin", "builtin:train", "builtin:test"):
            self.builtin = builtin_corpus.pairs(spec.partition(":")[2] or "train")
            return
        if spec == "kaggle" or spec.startswith("kaggle:"):
            path = _kaggle_file(spec)
        elif Path(spec).exists() or _prefix_files(spec, opts):
            path = Path(spec)
        elif ":" in spec and not os.path.sep in spec.split(":", 1)[0]:
            raise DataError(f"unknown --data scheme {spec.split(':', 1)[0]!r}: use builtin, builtin:test, kaggle:OWNER/SLUG or a file path")
        else:
            raise DataError(f"{spec}: no such file (nor {spec}.{opts.src_lang} + {spec}.{opts.tgt_lang})")
        prefix = _prefix_files(str(path), opts)
        if prefix and not path.is_file():
            self.files, self.kind = list(prefix), "prefix"
        elif path.is_dir():
            raise DataError(f"{path}: is a folder; pass a .tsv/.txt/.csv file or a PREFIX of PREFIX.{opts.src_lang}/PREFIX.{opts.tgt_lang}")
        else:
            self.files, self.kind = [path], "csv" if path.suffix.lower() == ".csv" else "tsv"

    def digest(self) -> str:
        """What the pairs are made of: the files' content (or the builtin corpus), for cache keys."""
        if self.builtin is not None:
            return hashlib.sha256(json.dumps(self.builtin).encode()).hexdigest()
        from runtime.folder_io import sha256_files

        try:
            return sha256_files(self.files)
        except OSError as e:
            raise DataError(f"{e.filename}: cannot read ({e.strerror})") from None

    def rows(self) -> Iterator[tuple]:
        if self.builtin is not None:
            return iter(self.builtin)
        if self.kind == "prefix":
            return _aligned(*self.files)
        if self.kind == "csv":
            return _csv_rows(self.files[0], self.opts)
        # tatoeba / anki: english<TAB>french[<TAB>attribution]
        return (tuple(line.split("\t")[:2]) if "\t" in line else (line,) for line in _read_lines(self.files[0]))


class PairStream:
    """Iterates a source's usable pairs (stripped, both sides non-empty), at most max_pairs;
    counts the rows dropped so far, by reason. Nothing is held but the current row."""

    def __init__(self, source: _Source):
        self.source, self.count, self.rows = source, 0, 0
        self.wrong_columns, self.empty_side = 0, 0

    @property
    def skipped(self) -> int:
        return self.wrong_columns + self.empty_side

    def __iter__(self) -> Iterator[tuple[str, str]]:
        limit = self.source.opts.max_pairs
        for row in self.source.rows():
            if limit is not None and self.count >= limit:
                return
            self.rows += 1
            if len(row) != 2:
                self.wrong_columns += 1
            elif not (row[0].strip() and row[1].strip()):
                self.empty_side += 1
            else:
                self.count += 1
                yield row[0].strip(), row[1].strip()

    def no_pair_error(self) -> DataError:
        """The corpus gave no usable pair: say which file and what was wrong with its rows."""
        where = ", ".join(str(f) for f in self.source.files) or self.source.spec
        if not self.rows:
            return DataError(f"{where}: " + ("no rows after its header" if self.source.kind == "csv" else "the corpus is empty")
                             + ": nothing to train on")
        reasons = []
        if self.wrong_columns:
            want = "source and target columns" if self.source.kind == "csv" else "source<TAB>target"
            reasons.append(f"{self.wrong_columns} with the wrong number of columns (expected {want})")
        if self.empty_side:
            reasons.append(f"{self.empty_side} with an empty side")
        return DataError(f"{where}: none of its {self.rows} rows is a usable pair: " + ", ".join(reasons))


def load_corpus(spec: str, opts: DataOptions | None = None) -> Corpus:
    """Reads `builtin[:train|:test]`, a file or prefix path, or `kaggle[:OWNER/SLUG[/versions/N][:FILE]]`
    into a list of pairs (for evaluation sets and samples; training streams into a TokenCache)."""
    stream = PairStream(_Source(spec, opts or DataOptions()))
    pairs = list(stream)
    if not pairs:
        raise stream.no_pair_error()
    return Corpus(pairs, spec, stream.skipped)


def _prefix_files(prefix: str, opts: DataOptions) -> tuple[Path, Path] | None:
    src, tgt = Path(f"{prefix}.{opts.src_lang}"), Path(f"{prefix}.{opts.tgt_lang}")
    return (src, tgt) if src.is_file() and tgt.is_file() else None


def _read_lines(path: Path) -> Iterator[str]:
    """Streams a file's lines (UTF-8, a BOM dropped); invalid UTF-8 is an error naming the line."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}: line {n} is not valid UTF-8") from None
            yield line.rstrip("\r\n")


def _aligned(src: Path, tgt: Path) -> Iterator[tuple[str, str]]:
    a, b = _read_lines(src), _read_lines(tgt)
    n = 0
    for n, (s, t) in enumerate(itertools.zip_longest(a, b), 1):
        if s is None or t is None:
            short, long_ = (src, tgt) if s is None else (tgt, src)
            raise DataError(f"{short} has {n - 1} lines but {long_} has more: they must be line-aligned")
        yield s, t


def _csv_rows(path: Path, opts: DataOptions) -> Iterator[tuple]:
    reader = csv.reader(_read_lines(path))
    header = next(reader, None)
    if header is None:
        return
    missing = [c for c in (opts.src_col, opts.tgt_col) if c not in header]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r} in the header {header}; choose with --src-col/--tgt-col")
    i, j = header.index(opts.src_col), header.index(opts.tgt_col)
    for row in reader:
        yield (row[i], row[j]) if len(row) == len(header) else ()


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


def split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic held-out split of row numbers 0..n-1 -> (train rows, valid rows), each sorted:
    the same seed and corpus give the same validation set."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).numpy()
    n_valid = max(1, int(n * fraction)) if n > 1 else 0
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def cached_tokens(spec: str, opts: DataOptions, tokenizer, text: TextConfig, cache_dir: Path | None,
                  workers: int = 1, build: bool = True) -> TokenCache:
    """The source's TokenCache, its pairs prepared as `text` says: read from cache_dir when an
    earlier run built it from the same content and settings, else streamed from the file and saved
    there (build=False: only read; None if absent). The builtin corpus is small and tokenized in memory."""
    source = _Source(spec, opts)
    if source.builtin is not None or cache_dir is None:
        return _tokenize(source, tokenizer, text, 1)
    settings = {"tokenizer": tokenizer.to_dict(), "text": text.to_dict(), "kind": source.kind, "max_pairs": opts.max_pairs,
                "columns": [opts.src_col, opts.tgt_col] if source.kind == "csv" else None,
                "langs": [opts.src_lang, opts.tgt_lang] if source.kind == "prefix" else None}
    key = token_cache.cache_key(source.digest(), settings)
    meta = {"key": key, "source": spec, **settings}
    folder = Path(cache_dir) / key
    cache, problem = token_cache.load(folder, meta)
    if problem:  # damaged (a disk error, a killed copy, an edit): rebuilt, never trusted
        warnings.warn(f"token cache {folder} is damaged ({problem}): rebuilding it", CacheWarning, stacklevel=2)
    if cache is None and build:
        if sum(f.stat().st_size for f in source.files) < POOL_MIN_BYTES:
            workers = 1  # starting worker processes costs more than they save on a small file
        cache = _tokenize(source, tokenizer, text, workers)
        token_cache.save(cache, folder, meta)
    return cache


def _tokenize(source: _Source, tokenizer, text: TextConfig, workers: int) -> TokenCache:
    """Streams the source's pairs into a TokenCache in memory; an empty corpus is an error."""
    stream = PairStream(source)
    cache = token_cache.build(stream, tokenizer, workers, text)
    cache.skipped = stream.skipped
    if len(cache) == 0:
        raise stream.no_pair_error()
    return cache


def _lookup(tokens: list[str], vocab: Vocab) -> np.ndarray:
    """cache id -> vocabulary id (<unk> for tokens outside the vocabulary)."""
    return np.fromiter((vocab.stoi.get(t, UNK_ID) for t in tokens), dtype=np.int64, count=len(tokens))


class PairIds:
    """Rows of a TokenCache as model inputs: vocabulary ids through lookup arrays, the source laid
    out as runtime.vocab.source_ids does it (<sos>, words reversed if asked, <eos>; at most max_src
    ids), the target as target_ids (<sos>, words, <eos>). Reads only the rows a batch needs.

    With `tokenizer` and `text` given, a batch can rewrite rows with augmentation's modifiers (the
    row's cached tokens back to text, modified, prepared and tokenized again)."""

    def __init__(self, cache: TokenCache, rows: np.ndarray, src_vocab: Vocab, tgt_vocab: Vocab, reverse: bool,
                 max_src: int, tokenizer=None, text: TextConfig | None = None):
        self.cache, self.rows = cache, np.asarray(rows, dtype=np.int64)
        self.src_vocab, self.tgt_vocab, self.tokenizer, self.text = src_vocab, tgt_vocab, tokenizer, text
        self.src_map, self.tgt_map = _lookup(cache.src_tokens, src_vocab), _lookup(cache.tgt_tokens, tgt_vocab)
        self.reverse, self.max_src = reverse, max_src
        off = cache.src_offsets
        self.src_lengths = np.minimum(off[self.rows + 1] - off[self.rows], max_src - 2) + 2  # (n,) for bucketing

    def __len__(self) -> int:
        return len(self.rows)

    def side_ids(self, side: str, idx: np.ndarray) -> list[np.ndarray]:
        """The rows at positions idx of one side as vocabulary ids (as in the corpus: no specials, not reversed)."""
        ids, offsets, _ = self.cache.side(side)
        flat, lengths = gather(ids, offsets, self.rows[idx])
        mapped = (self.src_map if side == "src" else self.tgt_map)[flat]
        return np.split(mapped, np.cumsum(lengths)[:-1])

    def texts(self, pos: int) -> tuple[str, str]:
        """Row `pos` of this set as (source, target) text, as prepared when the cache was built."""
        row, out = self.rows[pos], []
        for side in ("src", "tgt"):
            ids, offsets, tokens = self.cache.side(side)
            out.append(self.tokenizer.detokenize([tokens[i] for i in ids[offsets[row]: offsets[row + 1]]], side))
        return out[0], out[1]

    def _rewritten(self, pos: int, mask: int) -> tuple[np.ndarray, np.ndarray]:
        """Row `pos` through the modifiers of mask, then prepared and tokenized as any training pair."""
        from trainer.augment import apply
        from trainer.token_cache import prepare_pair

        src, tgt = prepare_pair(*apply(*self.texts(pos), mask), self.text)
        return (np.array(self.src_vocab.ids(self.tokenizer.tokenize(src, "src")), dtype=np.int64),
                np.array(self.tgt_vocab.ids(self.tokenizer.tokenize(tgt, "tgt")), dtype=np.int64))

    def source_rows(self, idx) -> list[np.ndarray]:
        """idx: positions in this set -> their sources as the model reads them (not augmented)."""
        return [self._source_row(words) for words in self.side_ids("src", np.asarray(idx, dtype=np.int64))]

    def _source_row(self, words: np.ndarray) -> np.ndarray:
        """<sos>, the words (at most max_src - 2, reversed if asked), <eos>."""
        words = words[: self.max_src - 2]
        return np.concatenate([[SOS_ID], words[::-1] if self.reverse else words, [EOS_ID]])

    def batch(self, idx, masks: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """idx: positions in this set -> src (B, S), src_lengths (B,), tgt (B, T), padded with <pad>.
        masks: each position's augmentation modifiers (trainer/augment.py), or None for none."""
        idx = np.asarray(idx, dtype=np.int64)
        src_rows, tgt_rows = self.side_ids("src", idx), self.side_ids("tgt", idx)
        if masks is not None:
            for k in np.flatnonzero(masks[idx]):
                src_rows[k], tgt_rows[k] = self._rewritten(int(idx[k]), int(masks[idx[k]]))
        srcs = [self._source_row(words) for words in src_rows]
        tgts = [np.concatenate([[SOS_ID], words, [EOS_ID]]) for words in tgt_rows]
        src, src_len = pad(srcs)
        tgt, _ = pad(tgts)
        return src, src_len, tgt


def encode_pairs(pairs, tokenizer, src_vocab: Vocab, tgt_vocab: Vocab, reverse: bool, max_src: int,
                 text: TextConfig) -> PairIds:
    """A (small) list of pairs as model inputs, prepared and tokenized in memory."""
    cache = token_cache.build(iter(pairs), tokenizer, text=text)
    return PairIds(cache, np.arange(len(cache)), src_vocab, tgt_vocab, reverse, max_src)


def pad(seqs) -> tuple[torch.Tensor, torch.Tensor]:
    """Id sequences -> ids (B, T) padded with <pad>, lengths (B,): the runtime's padding, as tensors."""
    from runtime.decode import pad_batch

    ids, lengths = pad_batch(seqs)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


def _cut_by_tokens(chunk: np.ndarray, lengths: np.ndarray, batch_tokens: int, min_rows: int) -> list[np.ndarray]:
    """Consecutive runs of chunk whose rows x longest source (the padded batch) stay within
    batch_tokens, but never fewer than min_rows sentences (one per process) even if that
    exceeds it."""
    groups, start, longest = [], 0, 0
    for j, pos in enumerate(chunk):
        longest_with = max(longest, int(lengths[pos]))
        if j - start >= min_rows and (j - start + 1) * longest_with > batch_tokens:
            groups.append(chunk[start:j])
            start, longest_with = j, int(lengths[pos])
        longest = longest_with
    return groups + [chunk[start:]]


def batch_groups(lengths: np.ndarray, batch_size: int, generator: torch.Generator | None = None,
                 min_rows: int = 1, batch_tokens: int = 0) -> list[np.ndarray]:
    """The epoch's global batches as arrays of positions.

    With a generator: shuffled, then sorted by source length inside pools of 50 batches so a batch
    carries little padding, then the batches shuffled again. Without: in corpus order. Batches
    hold batch_size sentences, or (batch_tokens > 0) as many as fit that many padded source ids
    (short sentences go in larger batches). A pool's last batch with fewer than min_rows sentences
    (the number of processes, which each need a share) joins the one before it; with one process
    nothing is merged.
    """
    n = len(lengths)
    pool = batch_size * 50
    if generator is None:
        pools = [np.arange(n)]
    else:
        order = torch.randperm(n, generator=generator).numpy()
        pools = []
        for i in range(0, n, pool):
            chunk = order[i : i + pool]
            pools.append(chunk[np.argsort(lengths[chunk], kind="stable")])
    groups = []
    for chunk in pools:
        if batch_tokens:
            cut = _cut_by_tokens(chunk, lengths, batch_tokens, min_rows)
        else:
            cut = [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
        if len(cut) > 1 and len(cut[-1]) < min_rows:
            cut[-2:] = [np.concatenate(cut[-2:])]
        groups += cut
    if generator is not None:
        groups = [groups[k] for k in torch.randperm(len(groups), generator=generator).tolist()]
    return groups
