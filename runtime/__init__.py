"""Torch-free inference for exported seq2seq LSTM translators (numpy + onnxruntime)."""
from __future__ import annotations

__all__ = ["Translator", "share_thread_pool"]


def __getattr__(name: str):
    # lazy: `import runtime` stays cheap, onnxruntime loads with the first Translator
    if name == "Translator":
        from runtime.translator import Translator

        return Translator
    if name == "share_thread_pool":
        from runtime.sessions import share_thread_pool

        return share_thread_pool
    raise AttributeError(name)
