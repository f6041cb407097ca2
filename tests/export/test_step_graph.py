"""The hand-built step graph's pieces against numpy."""
import numpy as np


def test_blocked_argmax_is_argmax_with_ties_to_the_first_index():
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from export.step_graph import _blocked_argmax

    vocab, block = 256, 64
    nodes, inits = [], []

    def node(op, inputs, outputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    _blocked_argmax(node, const, "logits", "ids", vocab, block)
    graph = helper.make_graph(nodes, "argmax", [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", vocab])],
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, vocab)).astype(np.float32)
    x[0] = 0.0  # all equal: index 0
    x[1, [70, 200]] = 9.0  # a tie across blocks: the first
    x[2, [130, 131]] = 9.0  # a tie inside a block
    x[3, -1] = 9.0  # the very last
    x[4] = -np.inf
    x[4, 65] = -1.0  # -inf elsewhere
    x[5] = np.float32(3.0)
    x[5, 63:65] = 4.0  # the maximum straddling a block boundary
    assert (session.run(None, {"logits": x})[0] == x.argmax(-1)).all()
