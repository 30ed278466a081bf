"""The ONNX operator allow-list covers what cnnlab's own exporter writes, for every model.

Each registered model is exported the way ``cnnlab export --format onnx`` does it (grayscale
28x28 and RGB 32x32), and the file must pass the same check ``predict`` and ``serve`` apply to
a stranger's ONNX file.
"""

from __future__ import annotations

import pytest
import torch

from cnnlab.engine.onnx_check import ONNX_OPERATORS, check_onnx_model
from cnnlab.models import create_model, list_models


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_every_model_exports_only_allowed_operators(name, channels, size, tmp_path):
    import onnx

    from cnnlab import export

    model = create_model(name, in_channels=channels, input_size=size).eval()
    path = tmp_path / "m.onnx"
    export._onnx_export(model, torch.zeros(1, channels, size, size), path, export.OPSET)
    used = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert used <= ONNX_OPERATORS, sorted(used - ONNX_OPERATORS)
    check_onnx_model(path.read_bytes(), path)
