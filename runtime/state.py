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
DECODER_INPUTS = ("prev_ids", "hidden", "cell")
DECODER_OUTPUTS = ("log_probs", "new_hidden", "new_cell", "next_ids")
V1_DECODER_OUTPUTS = ("logits",) + DECODER_OUTPUTS  # format 1 also returned the raw logits, never read
# attention: the encoder also returns the memory (the top layer's outputs); the decoder also takes
# the memory, the source lengths (to mask padding) and the input feed, and returns the next feed
ATTENTION_ENCODER_OUTPUTS = ENCODER_OUTPUTS + ("memory",)
ATTENTION_DECODER_INPUTS = DECODER_INPUTS + ("input_feed", "memory", "src_lengths")
ATTENTION_DECODER_OUTPUTS = DECODER_OUTPUTS + ("new_input_feed",)
SOURCE_STATE = ("memory", "src_lengths")  # per source sentence; the same for all its beams
STATE_AXIS = {"hidden": 1, "cell": 1}  # (L, B, H); every other part has the batch first


def encoder_outputs(attention: str) -> tuple[str, ...]:
    return ATTENTION_ENCODER_OUTPUTS if attention == ATTENTION_LUONG else ENCODER_OUTPUTS


def decoder_inputs(attention: str) -> tuple[str, ...]:
    return ATTENTION_DECODER_INPUTS if attention == ATTENTION_LUONG else DECODER_INPUTS


def decoder_outputs(attention: str) -> tuple[str, ...]:
    return ATTENTION_DECODER_OUTPUTS if attention == ATTENTION_LUONG else DECODER_OUTPUTS


def select_rows(state: dict, rows, same_sources: bool, take) -> dict:
    """The state's batch rows `rows`, gathered by take(tensor, axis, rows) (numpy, torch, ...).

    same_sources: every new row continues a row of the same source sentence (beam search after
    its first expansion), so the per-sentence parts (memory, lengths) stay as they are.
    """
    return {name: x if same_sources and name in SOURCE_STATE else take(x, STATE_AXIS.get(name, 0), rows)
            for name, x in state.items()}
