"""A graph's weights file (format 6): `<graph>.safetensors` beside `<graph>.onnx`, read as views.

The file is in the safetensors format (https://huggingface.co/docs/safetensors): 8 bytes, the
little-endian length N of a JSON header, the header (tensor name -> dtype, shape, data_offsets
[begin, end) counted from the end of the header), then the tensors' bytes. The graph refers to the
same bytes as ONNX external data (location `<graph>.safetensors`, offset 8 + N + begin), so
onnxruntime-web and ONNX's own tools read the pair as they are; the Python runtime instead gives
onnxruntime views over the folder's verified bytes as the graph's initializers
(SessionOptions.add_external_initializers), which it copies once into the session: it parses a
graph of a few kilobytes instead of one of megabytes, and the weights go through no protobuf
(docs/benchmarks.md, cold start).

The header is read here rather than with the safetensors package, whose numpy loader copies each
tensor out of the file first: one more copy of every weight. The export writes the file with it.
"""
from __future__ import annotations

import json
import math

import numpy as np

MAX_HEADER = 100 << 20  # the safetensors library's own bound on the header
DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "F16": "<f2", "I32": "<i4",
          "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8"}


class WeightsFileError(ValueError):
    """The bytes are not a safetensors file this runtime reads; the message says why, in a few words."""


def read_header(data: bytes) -> tuple[int, dict]:
    """-> (where the tensors' bytes start, {name: {"dtype", "shape", "data_offsets"}}), every
    entry checked: a known dtype, a shape of ints >= 0, offsets inside the file that hold exactly
    the shape's bytes."""
    if len(data) < 8:
        raise WeightsFileError("shorter than a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n > min(MAX_HEADER, len(data) - 8):
        raise WeightsFileError(f"its header claims {n} bytes, more than the file has")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsFileError("its header is not JSON") from None
    if not isinstance(header, dict):
        raise WeightsFileError("its header is not a JSON object")
    header.pop("__metadata__", None)
    start, size = 8 + n, len(data) - 8 - n
    for name, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES:
            raise WeightsFileError(f"tensor {name!r}: no dtype this runtime reads")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):  # not bool
            raise WeightsFileError(f"tensor {name!r}: shape {shape!r} is not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= size
                and offsets[1] - offsets[0] == math.prod(shape) * np.dtype(DTYPES[entry["dtype"]]).itemsize):
            raise WeightsFileError(f"tensor {name!r}: data_offsets {offsets!r} do not hold its "
                                   f"{entry['dtype']} {shape}")
    return start, header


def read_weights(data: bytes) -> dict[str, np.ndarray]:
    """The file's tensors: read-only numpy views into `data` (which they keep alive), no copy."""
    start, header = read_header(data)
    out = {}
    for name, entry in header.items():
        dtype, shape = np.dtype(DTYPES[entry["dtype"]]), entry["shape"]
        count = math.prod(shape)  # Python's ints: a header's sizes cannot overflow it
        offset = start + entry["data_offsets"][0]
        out[name] = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
    return out
