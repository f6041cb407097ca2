"""Training sources written as people type them (after OpusTrainer's modifiers, as Mozilla's
translation pipeline uses them): lower case, a lower-case first letter, no final punctuation; and,
for models that don't restore casing at run time, ALL CAPS and Title Case with the target in the
same casing.

Which modifiers a row gets is drawn afresh each epoch from (seed, epoch) for every row of the
training set at once, so it is the same under --resume and for any number of torchrun processes
(each reads the draws of its own share). Validation is never augmented.
"""
from __future__ import annotations

import re
from dataclasses import fields

import numpy as np

from runtime.prepare import with_first_letter
from trainer.config import AugmentConfig

MODIFIERS = tuple(f.name for f in fields(AugmentConfig))  # bit k of a row's mask = MODIFIERS[k]
BIT = {name: 1 << k for k, name in enumerate(MODIFIERS)}
_FINAL_PUNCTUATION = re.compile(r"[\s.!?…。！？]+$")
_WORD = re.compile(r"\w[\w'’-]*")


def epoch_masks(n_rows: int, rates: AugmentConfig, seed: int, epoch: int) -> np.ndarray | None:
    """(n_rows,) uint8: each row's modifiers this epoch, as bits of MODIFIERS; None if all rates are 0."""
    probs = np.array([getattr(rates, name) for name in MODIFIERS])
    if not probs.any():
        return None
    draws = np.random.default_rng([seed, epoch, 0xA06]).random((n_rows, len(MODIFIERS)), dtype=np.float32)
    return ((draws < probs) * (1 << np.arange(len(MODIFIERS)))).sum(axis=1).astype(np.uint8)


def strip_final_punctuation(text: str) -> str:
    stripped = _FINAL_PUNCTUATION.sub("", text)
    return stripped or text  # a text of only punctuation stays


def title_case(text: str) -> str:
    return _WORD.sub(lambda m: m.group()[:1].upper() + m.group()[1:].lower(), text)


def apply(src: str, tgt: str, mask: int) -> tuple[str, str]:
    """One pair with the modifiers of mask. Casing modifiers exclude each other, strongest first:
    upper (both sides), title (both sides), lowercase, lower_first (the source only)."""
    if mask & BIT["upper"]:
        src, tgt = src.upper(), tgt.upper()
    elif mask & BIT["title"]:
        src, tgt = title_case(src), title_case(tgt)
    elif mask & BIT["lowercase"]:
        src = src.lower()
    elif mask & BIT["lower_first"]:
        src = with_first_letter(src, str.lower)
    if mask & BIT["strip_punct"]:
        src = strip_final_punctuation(src)
    return src, tgt
