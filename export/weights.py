"""Each graph's weights into `<graph>.safetensors` beside it (format 6; runtime/weights.py says
why and how the runtime reads them). The graph keeps its small constants (shapes, axes, scalars)
and refers to every other initializer as ONNX external data: the same bytes, at their offsets in
the safetensors file, so onnxruntime-web and `onnx.load` read the pair as it is."""
from __future__ import annotations

from pathlib import Path

MIN_BYTES = 1024  # smaller initializers stay inside the graph


def split_weights(path: Path) -> tuple[bytes, bytes]:
    """The self-contained graph at `path` -> (the graph referring to its weights in
    `<graph>.safetensors`, that file), as the folder will hold them."""
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import set_external_data
    from safetensors.numpy import save

    from runtime.model_format import FIXED_CANDIDATES, weights_file
    from runtime.weights import read_header

    model = onnx.load(str(path))
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # a fixed shortlist's candidates always: the runtime reads them from the weights file (format 8)
    moved = {name: array for name, array in arrays.items() if array.nbytes >= MIN_BYTES or name == FIXED_CANDIDATES}
    data = save(moved, metadata={"graph": path.name})
    start, header = read_header(data)  # the offsets as the runtime will read them
    for tensor in model.graph.initializer:
        if tensor.name in moved:
            begin, end = header[tensor.name]["data_offsets"]
            tensor.CopyFrom(numpy_helper.from_array(moved[tensor.name], tensor.name))  # raw_data, whatever it was
            set_external_data(tensor, weights_file(path.name), offset=start + begin, length=end - begin)
            tensor.ClearField("raw_data")
    return model.SerializeToString(), data


def move_weights(path: Path) -> Path:
    """Rewrites the self-contained graph at `path` to refer to its weights in
    `<graph>.safetensors`, written beside it. -> the weights file's path."""
    from runtime.model_format import weights_file

    graph, data = split_weights(path)
    out = path.parent / weights_file(path.name)
    out.write_bytes(data)
    path.write_bytes(graph)
    return out


def folder_bytes(paths) -> int:
    """What self-contained graphs take in a folder: each graph and its weights file."""
    return sum(len(graph) + len(data) for graph, data in map(split_weights, paths))
