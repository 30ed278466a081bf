"""Flip test-time augmentation: the logits of an image averaged with those of its mirror.

One definition for every path that predicts (``infer`` in torch, a run's ONNX session in
NumPy, the explainer page), so they give the same probabilities. NumPy and torch only through
the array given: importing this module imports neither.

>>> import numpy as np
>>> mirror_mean(lambda x: x[:, :1, 0, :].sum(-1), np.arange(4.0).reshape(1, 1, 1, 4))
array([[6.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def mirrored(x: Any) -> Any:
    """A (N, C, H, W) batch flipped left-right: a torch tensor or a contiguous NumPy array."""
    if hasattr(x, "flip"):  # torch.Tensor (a NumPy array has no .flip method)
        return x.flip(-1)
    import numpy as np

    return np.ascontiguousarray(x[..., ::-1])


def mirror_mean(logits_of: Callable[[Any], Any], x: Any, logits: Any = None) -> Any:
    """``(logits_of(x) + logits_of(mirrored(x))) / 2``; pass ``logits`` if you have x's already."""
    first = logits_of(x) if logits is None else logits
    return (first + logits_of(mirrored(x))) / 2
