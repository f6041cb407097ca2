"""The one greedy loop (runtime/decode.py), driven by a scripted decoder so each stop is counted."""
import numpy as np

from runtime.decode import decode_rows, greedy_search
from runtime.model_format import DecodingDefaults
from runtime.vocab import EOS_ID, SOS_ID


class Scripted:
    """Encoder and decoder in one: sentence b emits scripts[b] (then repeats its last token)."""

    def __init__(self, scripts, vocab=20):
        self.scripts, self.vocab, self.fed = scripts, vocab, []

    def __call__(self, src_ids, src_lengths):
        self.fed = []  # a new batch starts at step 0
        return (np.arange(len(src_ids)),)  # the state: which sentence each row is

    def step(self, prev_ids, state, want_log_probs=False):
        t = len(self.fed)
        self.fed.append(prev_ids.copy())
        rows = state[0]
        logits = np.full((len(rows), self.vocab), -10.0, dtype=np.float32)
        for r, b in enumerate(rows):
            script = self.scripts[b]
            logits[r, script[min(t, len(script) - 1)]] = 0.0
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return logits.argmax(-1), (log_probs if want_log_probs else None), state

    def select(self, state, rows, same_sources=False):
        return (state[0][rows],)


def test_greedy_stops_at_eos_and_caps():
    src, lengths = np.array([[2, 5, 3], [2, 6, 3]]), np.array([3, 3])
    # sentence 0 ends with <eos> after two tokens, sentence 1 never does: it runs to its cap of 5
    dec = Scripted([[7, 8, EOS_ID], [9]])
    assert greedy_search(dec, dec, src, lengths, np.array([10, 5])) == [[7, 8], [9, 9, 9, 9, 9]]
    assert len(dec.fed) == 5  # the batch stops when its last sentence hits its cap, not at max(caps) = 10
    # a sentence that ended leaves the batch: later steps feed only the one still running
    assert [f.tolist() for f in dec.fed] == [[SOS_ID, SOS_ID], [7, 9], [8, 9], [9], [9]]
    # both end with <eos>: decoding stops at the step that emits the last one
    dec = Scripted([[7, EOS_ID], [9, 9, EOS_ID]])
    assert greedy_search(dec, dec, src, lengths, np.array([50, 50])) == [[7], [9, 9]]
    assert len(dec.fed) == 3


def test_decode_rows_keeps_keys_and_beam_one_equals_greedy():
    scripts = {0: [4, 5, EOS_ID], 1: [6, EOS_ID], 2: [7, 7, 7, 8, EOS_ID]}
    rows = {10: [2, 4, 3], 11: [2, 4, 4, 4, 3], 12: [2, 3]}  # sorted by length into batches internally

    class ByLength(Scripted):  # a sentence's script is chosen by its source length
        def __call__(self, src_ids, src_lengths):
            self.fed = []
            return (np.array([{3: 0, 5: 1, 2: 2}[int(n)] for n in src_lengths]),)

    dec = ByLength(scripts)
    greedy = decode_rows(dec, dec, rows, DecodingDefaults(), batch_size=2)
    assert {k: v[0][0] for k, v in greedy.items()} == {10: [4, 5], 11: [6], 12: [7, 7, 7, 8]}
    beam = decode_rows(dec, dec, rows, DecodingDefaults(), batch_size=2, with_scores=True)
    assert {k: v[0][0] for k, v in beam.items()} == {k: v[0][0] for k, v in greedy.items()}
