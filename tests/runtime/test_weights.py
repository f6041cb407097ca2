"""Format 6: each graph's weights in <graph>.safetensors, read as views and given to onnxruntime in place."""
import json
import struct

import numpy as np
import pytest

from runtime import Translator
from runtime.model_format import FORMAT_VERSION
from runtime.sessions import EncoderSession, make_session
from runtime.weights import WeightsFileError, read_header, read_weights
from trainer.data import load_corpus

SENTENCES = [s for s, _ in load_corpus("builtin:test").pairs[:40]] + ["Hello.", "Thank you!"]


def test_the_views_are_the_files_tensors_without_a_copy(tiny_att_onnx_int8):
    from safetensors.numpy import load

    data = (tiny_att_onnx_int8 / "decoder.safetensors").read_bytes()
    views, want = read_weights(data), load(data)  # the safetensors package's own reading
    assert views.keys() == want.keys() and {a.dtype for a in views.values()} >= {np.dtype(np.int8), np.dtype(np.float32)}
    whole = np.frombuffer(data, dtype=np.uint8)
    for name, view in views.items():
        assert view.dtype == want[name].dtype and np.array_equal(view, want[name])
        assert np.shares_memory(view, whole) and not view.flags.writeable


def test_a_session_holds_its_own_copy_of_the_weights(tiny_att_onnx):
    """onnxruntime copies the views into the session (so the folder's bytes may go once it is made):
    changing the buffer afterwards changes nothing, while the same change made before does."""
    def session(change_first: bool):
        buffer = bytearray((tiny_att_onnx / "encoder.safetensors").read_bytes())
        weights = read_weights(buffer)
        if change_first:
            weights["embedding.weight"][7] += 1.0  # the table the encoder gathers from
        made = EncoderSession(make_session((tiny_att_onnx / "encoder.onnx").read_bytes(), "cpu", 1, weights=weights), "cpu")
        if not change_first:
            weights["embedding.weight"][7] += 1.0
            buffer[:] = bytes(len(buffer))
        return made

    src, lengths = np.array([[2, 7, 3]]), np.array([3])
    plain = Translator(tiny_att_onnx).encoder(src, lengths)["memory"]
    assert np.array_equal(session(change_first=False)(src, lengths)["memory"], plain)
    assert not np.allclose(session(change_first=True)(src, lengths)["memory"], plain)


@pytest.mark.parametrize("folder", ["tiny_att_onnx_sl", "tiny_att_onnx_int8"])
def test_a_format_5_folder_translates_exactly_as_its_format_6_folder(folder, request, tmp_path):
    """The same graphs with their weights inside (format 5, as exported until now): the same
    translations and scores, bit for bit, for every graph of a shortlist folder and for int8."""
    from tests.runtime.old_formats import write_format_5

    now = request.getfixturevalue(folder)
    old = write_format_5(now, tmp_path / "v5")
    assert not list(old.glob("*.safetensors")) and sorted(now.glob("*.safetensors"))
    a, b = Translator(old), Translator(now)
    assert (a.config.format_version, b.config.format_version) == (5, FORMAT_VERSION)
    assert a.translate(SENTENCES) == b.translate(SENTENCES) and any(b.translate(SENTENCES))
    got = a.translate(SENTENCES, beam_size=3, n_best=2, return_scores=True)
    want = b.translate(SENTENCES, beam_size=3, n_best=2, return_scores=True)
    assert [[(h.text, h.score) for h in s] for s in got] == [[(h.text, h.score) for h in s] for s in want]


def _file(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize("data,why", [
    (b"\x01\x00", "shorter than a safetensors header"),
    (struct.pack("<Q", 1000) + b"{}", "claims 1000 bytes"),
    (struct.pack("<Q", 3) + b"{x}", "not JSON"),
    (_file([1], b""), "not a JSON object"),
    (_file({"w": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)), "no dtype"),
    (_file({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)), "not a list of sizes"),
    (_file({"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4)), "not a list of sizes"),
    (_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)), "do not hold"),
    (_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(4)), "do not hold"),
    # 2**64 elements, which int64 arithmetic would count as 0
    (_file({"w": {"dtype": "F32", "shape": [2 ** 32, 2 ** 32], "data_offsets": [0, 0]}}, b""), "do not hold"),
])
def test_a_bad_weights_file_is_refused_with_why(data, why):
    with pytest.raises(WeightsFileError, match=why):
        read_weights(data)


def test_a_well_formed_file_reads_back_every_dtype_and_an_empty_tensor():
    from safetensors.numpy import save

    arrays = {"f": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([-3, 4], dtype=np.int8),
              "l": np.array([[7]], dtype=np.int64), "e": np.zeros((0, 4), dtype=np.float32)}
    data = save(arrays)
    start, header = read_header(data)
    assert start == 8 + struct.unpack("<Q", data[:8])[0] and set(header) == set(arrays)
    got = read_weights(data)
    for name, array in arrays.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape and np.array_equal(got[name], array)
