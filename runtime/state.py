"""The decoder's state between steps: its parts by decoder kind, the graph tensor names that carry
them, and how to gather its batch rows.

The state is one dict named after the one-step decoder graph's inputs. The encoder produces it
(input_feed, zeros at the start, comes from the caller) and each step returns its new_* parts; the
session wrappers, the trainer's PyTorch adapters, beam search and the export all pass it around whole.
"""
from __future__ import annotations

ATTENTION_NONE, ATTENTION_LUONG = "none", "luong"
ATTENTIONS = (ATTENTION_NONE, ATTENTION_LUONG)  # the decoders this code runs

ENCODER_INPUTS = ("src_ids", "src_lengths")
ENCODER_OUTPUTS = ("hidden", "cell")
# with a shortlist (format 4), the output layer's rows for one batch: out_weight (H, K), out_bias (K,)
# of the target ids `candidates` (K,), sorted: a shortlist's union over the batch, or the whole vocabulary
OUTPUT_LAYER_INPUTS = ("candidates",)
OUTPUT_LAYER = ("out_weight", "out_bias", "candidates")
DECODER_INPUTS = ("prev_ids", "hidden", "cell")
DECODER_OUTPUTS = ("log_probs", "new_hidden", "new_cell", "next_ids")  # log_probs (B, K) over the candidates
# attention: the encoder also returns the memory (the top layer's outputs), its keys (W_a applied
# once per batch, B x H x S) and the score bias (0, or -inf at padding, B x 1 x S); the decoder also
# takes those and the input feed, and returns the next feed
ATTENTION_ENCODER_OUTPUTS = ENCODER_OUTPUTS + ("memory", "keys", "score_bias")
ATTENTION_DECODER_INPUTS = DECODER_INPUTS + ("input_feed", "memory", "keys", "score_bias")
ATTENTION_DECODER_OUTPUTS = DECODER_OUTPUTS + ("new_input_feed",)
# a format 8 fixed shortlist's decoder (a Loop over its step): max_steps (default 1) and log_probs_width
# (default 0: log_probs is (B, 0) unless asked), inputs with defaults (initializers: not among the
# inputs onnxruntime lists), and step_ids (n, B), every step's next_ids
MAX_STEPS, LOG_PROBS_WIDTH, STEP_IDS = "max_steps", "log_probs_width", "step_ids"
SOURCE_STATE = ("memory", "src_lengths", "keys", "score_bias")  # per source sentence; the same for all its beams
STATE_AXIS = {"hidden": 1, "cell": 1}  # (L, B, H); every other part has the batch first, but ...
BATCH_STATE = OUTPUT_LAYER  # ... these, which have no batch axis: one for all rows

# format 1-3 graphs: the decoder projects onto the whole vocabulary itself and masks padding from
# src_lengths (format 1 also returned the raw logits, never read)
V3_ATTENTION_ENCODER_OUTPUTS = ENCODER_OUTPUTS + ("memory",)
V3_ATTENTION_DECODER_INPUTS = DECODER_INPUTS + ("input_feed", "memory", "src_lengths")
V1_DECODER_OUTPUTS = ("logits",) + DECODER_OUTPUTS
KEYS_VERSION = 4  # the first format whose encoder returns the keys and the score bias


def encoder_outputs(attention: str, version: int = KEYS_VERSION) -> tuple[str, ...]:
    if attention != ATTENTION_LUONG:
        return ENCODER_OUTPUTS
    return ATTENTION_ENCODER_OUTPUTS if version >= KEYS_VERSION else V3_ATTENTION_ENCODER_OUTPUTS


def decoder_inputs(attention: str, version: int = KEYS_VERSION, shortlist: bool = False) -> tuple[str, ...]:
    if version < KEYS_VERSION:
        return V3_ATTENTION_DECODER_INPUTS if attention == ATTENTION_LUONG else DECODER_INPUTS
    return (ATTENTION_DECODER_INPUTS if attention == ATTENTION_LUONG else DECODER_INPUTS) + (OUTPUT_LAYER if shortlist else ())


def decoder_outputs(attention: str) -> tuple[str, ...]:
    return ATTENTION_DECODER_OUTPUTS if attention == ATTENTION_LUONG else DECODER_OUTPUTS


def select_rows(state: dict, rows, same_sources: bool, take) -> dict:
    """The state's batch rows `rows`, gathered by take(tensor, axis, rows) (numpy, torch, ...).

    same_sources: every new row continues a row of the same source sentence (beam search after
    its first expansion), so the per-sentence parts (memory, lengths) stay as they are.
    """
    return {name: x if name in BATCH_STATE or (same_sources and name in SOURCE_STATE) else
            take(x, STATE_AXIS.get(name, 0), rows) for name, x in state.items()}
