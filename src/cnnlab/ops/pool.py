"""Pooling: max / average over spatial windows, global pooling, and depth-wise pooling.

Spatial pooling works on the last two axes of an array of any rank >= 2 ((H, W), (C, H, W),
(N, C, H, W)...), like ``torch.nn.functional.max_pool2d`` / ``avg_pool2d``. Windows are strided
views of the input (no Python loop over output pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.errors import CnnlabError
from cnnlab.ops.conv import as_real_array
from cnnlab.ops.shapes import _check_int, output_size, pair

POOL_KINDS = ("max", "avg")


def _spatial(x) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise CnnlabError(f"pooling needs at least 2 dimensions (H, W); got shape {arr.shape}")
    return as_real_array(arr, "input", arr.ndim)


def _windows(x, kernel, stride, padding, fill):
    """Strided (..., Ho, Wo, kh, kw) window view of ``x`` padded with ``fill``."""
    k = tuple(_check_int("kernel size", v, 1) for v in pair(kernel, "kernel size"))
    s = k if stride is None else tuple(_check_int("stride", v, 1) for v in pair(stride, "stride"))
    p = tuple(_check_int("padding", v, 0) for v in pair(padding, "padding"))
    for axis in range(2):
        if p[axis] > k[axis] // 2:  # else a window could hold padding only (torch's rule)
            raise CnnlabError(f"padding={p[axis]} must be at most half the pool size {k[axis]}")
    h, w = x.shape[-2:]
    ho = output_size(h, k[0], p[0], s[0])
    wo = output_size(w, k[1], p[1], s[1])
    if any(p):
        width = [(0, 0)] * (x.ndim - 2) + [(p[0], p[0]), (p[1], p[1])]
        x = np.pad(x, width, constant_values=fill)
    win = sliding_window_view(x, k, axis=(-2, -1))
    return win[..., :: s[0], :: s[1], :, :][..., :ho, :wo, :, :], k, p


def max_pool2d(x, kernel: int | Sequence[int], stride=None, padding: int | Sequence[int] = 0):
    """Maximum over each ``kernel`` window (padding counts as -inf).

    Args:
        x: array (..., H, W).
        kernel: pool size k or (kh, kw).
        stride: default = kernel (non-overlapping); smaller gives overlapping pooling.
        padding: p or (ph, pw), at most half the pool size.

    >>> max_pool2d(np.arange(16).reshape(4, 4), 2)
    array([[ 5,  7],
           [13, 15]])
    """
    x = _spatial(x)
    fill = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    win, _, _ = _windows(x, kernel, stride, padding, fill)
    return win.max(axis=(-2, -1))


def avg_pool2d(
    x,
    kernel: int | Sequence[int],
    stride=None,
    padding: int | Sequence[int] = 0,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Mean over each ``kernel`` window, float64 (torch's defaults: zeros of padding count).

    >>> avg_pool2d(np.arange(16).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    x = _spatial(x).astype(np.float64, copy=False)
    win, k, p = _windows(x, kernel, stride, padding, 0.0)
    total = win.sum(axis=(-2, -1))
    if count_include_pad or not any(p):
        return total / (k[0] * k[1])
    ones = np.ones(x.shape[-2:])
    counts, _, _ = _windows(ones, kernel, stride, padding, 0.0)
    return total / counts.sum(axis=(-2, -1))


def global_max_pool2d(x) -> np.ndarray:
    """Maximum over the last two axes: (N, C, H, W) -> (N, C) (Keras GlobalMaxPooling2D)."""
    return _spatial(x).max(axis=(-2, -1))


def global_avg_pool2d(x) -> np.ndarray:
    """Mean over the last two axes: (N, C, H, W) -> (N, C) (Keras GlobalAveragePooling2D)."""
    return _spatial(x).astype(np.float64, copy=False).mean(axis=(-2, -1))


def depth_pool(x, size: int, stride: int | None = None, axis: int = -1, kind: str = "max"):
    """Pool across channels: windows of ``size`` channels, stride default ``size``, 'valid'.

    Notebook 004's ``tf.nn.max_pool(X, ksize=(1, 1, 1, 3), strides=(1, 1, 1, 3))`` on a
    channels-last image is ``depth_pool(X, 3)``: height and width stay, depth shrinks.

    >>> depth_pool(np.arange(12.0).reshape(1, 2, 6), 3).tolist()
    [[[2.0, 5.0], [8.0, 11.0]]]
    """
    arr = np.asarray(x)
    if arr.ndim < 1:
        raise CnnlabError(f"depth pooling needs an array; got shape {arr.shape}")
    arr = as_real_array(arr, "input", arr.ndim)
    if kind not in POOL_KINDS:
        raise CnnlabError(f"kind={kind!r} is not one of {', '.join(POOL_KINDS)}")
    axis = axis % arr.ndim
    c = arr.shape[axis]
    size = _check_int("pool size", size, 1, f" for {c} channels")
    step = size if stride is None else _check_int("stride", stride, 1, f" for {c} channels")
    if size > c:
        raise CnnlabError(f"depth pool size {size} is larger than the {c} channels of the input")
    out_c = output_size(c, size, 0, step)
    win = sliding_window_view(arr, size, axis=axis)
    win = np.take(win, np.arange(out_c) * step, axis=axis)
    return win.max(axis=-1) if kind == "max" else win.astype(np.float64).mean(axis=-1)
