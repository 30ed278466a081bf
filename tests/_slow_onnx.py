"""A valid but deliberately slow ONNX classifier, for the inference time limit.

``convs`` 3x3 convolutions of 64 channels at 28x28 one after another (about 1 ms each on one
thread), then a global average pool and a 10-class linear layer, with a cnnlab manifest: it
loads with ``cnnlab.load`` and passes the operator allow-list like any export (its manifest
names tutorial_cnn: the graph is what ONNX Runtime runs, the name only describes it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_slow_onnx(path: Path, convs: int = 60, width: int = 64) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes, prev = [], [], "x"
    for i in range(convs):
        c_in = 1 if i == 0 else width
        w = rng.normal(0, (2 / (9 * c_in)) ** 0.5, (width, c_in, 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev = f"r{i}"
    head = rng.normal(0, 0.1, (width, 10)).astype(np.float32)
    bias = np.zeros(10, np.float32)
    inits += [numpy_helper.from_array(head, "head"), numpy_helper.from_array(bias, "bias")]
    nodes += [helper.make_node("GlobalAveragePool", [prev], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["flat"]),
              helper.make_node("Gemm", ["flat", "head", "bias"], ["y"])]  # fmt: skip
    graph = helper.make_graph(
        nodes, "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    manifest = {"model_args": {"name": "tutorial_cnn"}, "input_shape": [1, 28, 28],
                "normalizer": {"kind": "half"}, "classes": list("0123456789")}  # fmt: skip
    helper.set_model_props(model, {"cnnlab_manifest": json.dumps(manifest)})
    path.write_bytes(model.SerializeToString())
    return path
