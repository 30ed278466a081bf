"""ONNX files from strangers are code: only the operators cnnlab's own exports use may run.

:func:`check_onnx_model` parses the bytes (nothing runs) and refuses control flow, operators of
other domains, external data outside the model's folder and non-finite weights, each in one
:class:`CheckpointError` line naming the file and the operator or tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.errors import CheckpointError
from cnnlab.fileio import check_regular_file

# The operators cnnlab's own ONNX exports use (every registered model, opset 17-18), plus a few
# plain element-wise ones. No control flow (Loop, If, Scan), no custom domains: an ONNX file
# from a stranger is code, and these are the operators that always finish.
ONNX_OPERATORS = frozenset(
    """
    Add AveragePool BatchNormalization Cast Clip Concat Constant Conv Div
    Dropout Elu Erf Exp Flatten Gather Gemm GlobalAveragePool GlobalMaxPool HardSigmoid
    HardSwish Identity LeakyRelu LogSoftmax MatMul Max MaxPool Mean Min Mul Neg PRelu Pad Pow
    ReduceMax ReduceMean Relu Reshape Selu Shape Sigmoid Slice Softmax Softplus Sqrt Squeeze
    Sub Sum Tanh Transpose Unsqueeze
    """.split()  # noqa: SIM905 - a word list reads best as text
)


def check_onnx_model(data: bytes, path: Path) -> Any:
    """Parse an ONNX file's bytes and refuse what cnnlab would not have written.

    Checks: every node's operator is in :data:`ONNX_OPERATORS` (default domain; subgraphs
    included), external-data tensors stay inside the model's folder, initializers are finite,
    the graph has one input and one output. Returns the parsed ``onnx.ModelProto``.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise CheckpointError(f"cannot load ONNX model {path}: not a valid ONNX file "
                              f"({str(exc)[:120]})") from None  # fmt: skip
    for node in _onnx_nodes(model.graph):
        if node.domain not in ("", "ai.onnx") or node.op_type not in ONNX_OPERATORS:
            where = f"{node.domain}." if node.domain else ""
            raise CheckpointError(
                f"refusing ONNX model {path}: operator {where}{node.op_type} is not one cnnlab "
                "exports use (allowed: convolution, pooling, dense and element-wise operators)"
            )
    folder = path.resolve().parent
    for tensor in _onnx_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            location = entries.get("location", "")
            target = (folder / location).resolve()
            if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
                raise CheckpointError(
                    f"refusing ONNX model {path}: tensor {tensor.name!r} points at external data "
                    f"{location!r} outside the model's folder"
                )
            check_regular_file(target, what="ONNX external data", error=CheckpointError)
            continue
        if tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE,
                                onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):  # fmt: skip
            try:
                finite = bool(np.isfinite(numpy_helper.to_array(tensor)).all())
            except Exception:  # a malformed tensor: ONNX Runtime's loader words it
                continue
            if not finite:
                raise CheckpointError(
                    f"{path}: ONNX weight {tensor.name!r} contains NaN or infinity (a diverged or "
                    "damaged model)"
                )
    if len(model.graph.output) != 1:
        raise CheckpointError(
            f"{path}: the ONNX graph has {len(model.graph.output)} outputs, expected 1"
        )
    return model


def _onnx_nodes(graph: Any):
    """Every node of a graph and of the subgraphs held in node attributes."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _onnx_nodes(attr.g)
            for sub in attr.graphs:
                yield from _onnx_nodes(sub)


def _onnx_tensors(graph: Any):
    yield from graph.initializer
    for node in _onnx_nodes(graph):
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors


def onnx_metadata(model: Any) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}
