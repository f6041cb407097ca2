"""A corpus tokenized once into flat id arrays, cached on disk and memory-mapped.

Each side is stored as `ids` (int32, every token of every sentence, one after the other) and
`offsets` (int64, n + 1: sentence k is ids[offsets[k]:offsets[k + 1]]). Ids index the cache's own
token list (`src_tokens` / `tgt_tokens`, first seen first), not a vocabulary: the vocabulary is
built later from counts over the training rows (`counts`) and applied per batch through a lookup
array, so one cache serves every --min-freq, --max-vocab, split and seed.

The cache is keyed by the corpus file's content hash and the settings that change tokens
(tokenizer, columns or languages, --max-pairs). Building it streams the file: no Python list of
all pairs is ever held, only numpy arrays (about 8 bytes a token). Large corpora are tokenized by
several worker processes.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from runtime.atomic import write_folder
from runtime.prepare import TextConfig, prepare_source, prepare_target
from runtime.tokenizer import SIDES, from_state

CACHE_VERSION = 2  # 2: pairs prepared (runtime/prepare.py) before tokenizing
CHUNK = 20_000  # pairs per worker task
ARRAYS = ("src_ids", "src_offsets", "tgt_ids", "tgt_offsets")


@dataclass
class TokenCache:
    src_ids: np.ndarray  # (total source tokens,) int32
    src_offsets: np.ndarray  # (n + 1,) int64
    tgt_ids: np.ndarray
    tgt_offsets: np.ndarray
    src_tokens: list[str]  # cache id -> token
    tgt_tokens: list[str]
    skipped: int = 0  # rows dropped while reading (empty side, wrong column count)
    folder: Path | None = None  # where it lives on disk (None: built in memory)
    reused: bool = False  # read from an earlier run's cache

    def __len__(self) -> int:
        return len(self.src_offsets) - 1

    def side(self, side: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return getattr(self, f"{side}_ids"), getattr(self, f"{side}_offsets"), getattr(self, f"{side}_tokens")

    def counts(self, side: str, rows: np.ndarray | None = None) -> dict[str, int]:
        """Token frequencies over the given rows (all rows by default)."""
        ids, offsets, tokens = self.side(side)
        flat = ids if rows is None else gather(ids, offsets, rows)[0]
        n = np.bincount(flat, minlength=len(tokens))
        return {tokens[i]: int(n[i]) for i in np.flatnonzero(n)}


def gather(ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the given rows, concatenated, and each row's length (no Python loop over rows)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    total = int(lengths.sum())
    # position p of the output reads ids[starts[row of p] + (p - first output position of that row)]
    shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return ids[shift + np.arange(total)], lengths


# ---- building ---------------------------------------------------------------------------------

def prepare_pair(src: str, tgt: str, text: TextConfig) -> tuple[str, str]:
    """A training pair as the runtime would prepare its source (and the target as the model should write it)."""
    return prepare_source(src, text)[0], prepare_target(tgt, text)


def _tokenize_chunk(args) -> tuple:
    """Worker: a chunk of pairs -> per side (its own token list, ids into it, lengths)."""
    state, text, pairs = args
    tokenizer = from_state(state)
    if text is not None:
        text = TextConfig(**text)
        pairs = [prepare_pair(src, tgt, text) for src, tgt in pairs]
    out = []
    for k, side in enumerate(SIDES):
        local: dict[str, int] = {}
        ids, lengths = [], []
        for pair in pairs:
            toks = tokenizer.tokenize(pair[k], side)
            ids.extend(local.setdefault(t, len(local)) for t in toks)
            lengths.append(len(toks))
        out.append((list(local), np.array(ids, dtype=np.int32), np.array(lengths, dtype=np.int64)))
    return out


def _chunks(pairs: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    chunk = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build(pairs: Iterable[tuple[str, str]], tokenizer, workers: int = 1, text: TextConfig | None = None) -> TokenCache:
    """Tokenizes a stream of pairs into flat arrays, each pair prepared as `text` says first (None:
    as they are). `pairs` is consumed once, chunk by chunk; with workers > 1 the chunks are
    tokenized in that many processes, merged in order."""
    vocab = {"src": {}, "tgt": {}}  # token -> cache id, per side
    parts = {"src": ([], []), "tgt": ([], [])}  # (id arrays, length arrays)
    settings = text.to_dict() if text is not None else None
    tasks = ((tokenizer.state(), settings, chunk) for chunk in _chunks(pairs, CHUNK))
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(_tokenize_chunk, tasks) if pool else map(_tokenize_chunk, tasks)
        for result in results:
            for side, (local_tokens, ids, lengths) in zip(("src", "tgt"), result):
                table = vocab[side]
                # local id -> cache id
                remap = np.fromiter((table.setdefault(t, len(table)) for t in local_tokens), dtype=np.int32,
                                    count=len(local_tokens))
                parts[side][0].append(remap[ids] if len(ids) else ids)
                parts[side][1].append(lengths)
    finally:
        if pool:
            pool.terminate()
    arrays = {}
    for side in ("src", "tgt"):
        ids, lengths = parts[side]
        arrays[f"{side}_ids"] = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        arrays[f"{side}_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return TokenCache(**arrays, src_tokens=list(vocab["src"]), tgt_tokens=list(vocab["tgt"]))


# ---- on disk -----------------------------------------------------------------------------------

def cache_key(content_digest: str, settings: dict) -> str:
    blob = json.dumps({"version": CACHE_VERSION, "content": content_digest, **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def save(cache: TokenCache, folder: Path, meta: dict) -> None:
    """Writes the cache under a temporary name and puts it in place (a killed build leaves no half
    cache, and the next build clears what it left)."""

    def write(tmp: Path) -> None:
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(cache, name))
        for side in ("src", "tgt"):
            (tmp / f"{side}_tokens.json").write_text(json.dumps(getattr(cache, f"{side}_tokens"), ensure_ascii=False),
                                                     encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps({**meta, "pairs": len(cache), "skipped": cache.skipped}, indent=1),
                                       encoding="utf-8")

    write_folder(folder, write, force=True)  # replaces an incomplete cache of the same key
    cache.folder = folder


def load(folder: Path, meta: dict) -> tuple[TokenCache | None, str | None]:
    """The cache in folder, memory-mapped, if it is there, was built with these settings and is
    sound -> (cache, None); else (None, what is wrong with it, or None if there is simply none)."""
    try:
        saved = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError):
        return None, "its meta.json is unreadable"
    if not isinstance(saved, dict) or {k: saved.get(k) for k in meta} != meta:
        return None, None if isinstance(saved, dict) else "its meta.json is not an object"
    try:
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        tokens = {f"{side}_tokens": json.loads((folder / f"{side}_tokens.json").read_text(encoding="utf-8"))
                  for side in SIDES}
    except (OSError, ValueError) as e:  # truncated, missing, or a pickle (np.load refuses those)
        return None, f"a file is missing or unreadable ({str(e).splitlines()[0][:80] if str(e) else type(e).__name__})"
    problem = check_arrays(arrays, tokens, saved.get("pairs"))
    if problem:
        return None, problem
    return TokenCache(**arrays, **tokens, skipped=int(saved.get("skipped", 0)), folder=folder, reused=True), None


def check_arrays(arrays: dict, tokens: dict, pairs=None) -> str | None:
    """What is wrong with a cache's arrays (None if nothing), vectorised: dtypes and shapes, offsets
    that start at 0, never decrease and end at the id count, ids inside the token list, and both
    sides of the same length."""
    counts = []
    for side in SIDES:
        ids, offsets, toks = arrays[f"{side}_ids"], arrays[f"{side}_offsets"], tokens[f"{side}_tokens"]
        if ids.dtype != np.int32 or ids.ndim != 1:
            return f"{side}_ids is not a flat int32 array"
        if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) == 0:
            return f"{side}_offsets is not a flat int64 array"
        if offsets[0] != 0 or offsets[-1] != len(ids) or (np.diff(offsets) < 0).any():
            return f"{side}_offsets do not run from 0 to the {len(ids):,} ids without decreasing"
        if not isinstance(toks, list) or not all(isinstance(t, str) for t in toks):
            return f"{side}_tokens is not a list of strings"
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= len(toks)):
            return f"{side}_ids point outside its {len(toks):,} tokens"
        counts.append(len(offsets) - 1)
    if counts[0] != counts[1] or (pairs is not None and pairs != counts[0]):
        return f"its sides hold {counts[0]:,} and {counts[1]:,} sentences" + (f", its meta.json {pairs}" if pairs is not None else "")
    return None


def default_workers() -> int:
    """Tokenizing processes: one per usable core, at most 8 (beyond, reading the file is the limit)."""
    from runtime.cores import usable_cores

    return max(1, min(usable_cores(), 8))
