"""Torch-free inference for exported seq2seq LSTM translators (numpy + onnxruntime)."""
from __future__ import annotations

__all__ = ["Translator"]


def __getattr__(name: str):
    # lazy: `import runtime` stays cheap, onnxruntime loads with the first Translator
    if name == "Translator":
        from runtime.translator import Translator

        return Translator
    raise AttributeError(name)
