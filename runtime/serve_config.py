"""`runtime serve`'s settings, each default in one place (the CLI reads them without loading the server)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeConfig:
    """`runtime serve`'s settings (the CLI's defaults come from here)."""

    host: str = "127.0.0.1"  # only this machine: put a reverse proxy in front to serve others
    port: int = 5000  # LibreTranslate's
    max_batch: int = 64  # sentences in one onnxruntime run
    max_wait_ms: float = 5.0  # under load, how long the first sentence of a batch waits for others
    char_limit: int = 5000  # characters per text
    body_limit: int = 1 << 20  # bytes per request
    queue_limit: int = 2048  # sentences accepted and not yet translated; more: 503 with Retry-After
    alternatives_limit: int = 8  # alternatives per text (beam search with a beam of 1 + this)
    api_keys: frozenset | None = None  # None: no key needed (one given is ignored, as LibreTranslate does)
    source: str | None = None  # language codes, where the model folder has none
    target: str | None = None
