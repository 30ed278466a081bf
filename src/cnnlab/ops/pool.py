"""Pooling: max / average over spatial windows, global pooling, and depth-wise pooling.

Spatial pooling works on the last two axes of an array of any rank >= 2 ((H, W), (C, H, W),
(N, C, H, W)...), with the arguments and results of ``torch.nn.functional.max_pool2d`` /
``avg_pool2d``: ``stride`` (default: the pool size), ``padding`` (at most half the pool size),
``dilation`` (max pooling), ``ceil_mode`` (keep a last partial window, unless it would start
in the right padding), and for averages ``count_include_pad`` / ``divisor_override``. Windows
are strided views of the input (no Python loop over output pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.errors import CnnlabError
from cnnlab.ops.conv import as_real_array
from cnnlab.ops.shapes import _check_int, output_size, pair, pool_output_size

POOL_KINDS = ("max", "avg")


def _spatial(x) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise CnnlabError(f"pooling needs at least 2 dimensions (H, W); got shape {arr.shape}")
    return as_real_array(arr, "input", arr.ndim)


def _geometry(shape, kernel, stride, padding, dilation, ceil_mode):
    """Per axis (k, s, p, d, out) of a pooling over the last two axes of ``shape``."""
    k = tuple(_check_int("kernel size", v, 1) for v in pair(kernel, "kernel size"))
    s = k if stride is None else tuple(_check_int("stride", v, 1) for v in pair(stride, "stride"))
    p = tuple(_check_int("padding", v, 0) for v in pair(padding, "padding"))
    d = tuple(_check_int("dilation", v, 1) for v in pair(dilation, "dilation"))
    out = tuple(
        pool_output_size(n, k[a], p[a], s[a], d[a], bool(ceil_mode))
        for a, n in enumerate(shape[-2:])
    )
    return k, s, p, d, out


def _windows(x, geometry, fill):
    """Strided (..., Ho, Wo, kh, kw) window view of ``x`` padded with ``fill``."""
    k, s, p, d, out = geometry
    width = [(0, 0)] * (x.ndim - 2)
    for a in range(2):
        span = d[a] * (k[a] - 1) + 1
        # a ceil_mode window may reach past the right padding: more fill there, never counted
        right = max(p[a], (out[a] - 1) * s[a] + span - x.shape[x.ndim - 2 + a] - p[a])
        width.append((p[a], right))
    if any(a or b for a, b in width):
        x = np.pad(x, width, constant_values=fill)
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    win = sliding_window_view(x, span, axis=(-2, -1))
    win = win[..., :: s[0], :: s[1], :: d[0], :: d[1]]
    return win[..., : out[0], : out[1], :, :]


def max_pool2d(
    x,
    kernel: int | Sequence[int],
    stride=None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """Maximum over each ``kernel`` window (padding never wins: it counts as -inf).

    Args:
        x: array (..., H, W).
        kernel: pool size k or (kh, kw).
        stride: default = kernel (non-overlapping); smaller gives overlapping pooling.
        padding: p or (ph, pw), at most half the pool size.
        dilation: d or (dh, dw), spacing between the window's taps.
        ceil_mode: round the output size up (a last partial window), as torch does.

    >>> max_pool2d(np.arange(16).reshape(4, 4), 2)
    array([[ 5,  7],
           [13, 15]])
    >>> max_pool2d(np.arange(25).reshape(5, 5), 2, ceil_mode=True)
    array([[ 6,  8,  9],
           [16, 18, 19],
           [21, 23, 24]])
    """
    x = _spatial(x)
    fill = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    geometry = _geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
    return _windows(x, geometry, fill).max(axis=(-2, -1))


def _divisors(n, k, s, p, out, count_include_pad):
    """Per output index along one axis: torch's window size (padding counted) or real count."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, n + p)
    if count_include_pad:
        return end - start  # padding counts, but not what a ceil_mode window adds beyond it
    return np.minimum(end, n) - np.maximum(start, 0)


def avg_pool2d(
    x,
    kernel: int | Sequence[int],
    stride=None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Mean over each ``kernel`` window, float64, with torch's arguments (in torch's order).

    Args:
        x, kernel, stride, padding, ceil_mode: as in :func:`max_pool2d` (no dilation, as torch).
        count_include_pad: divide by the window size including its zeros of padding (default)
            or only by the number of real input values in it.
        divisor_override: divide every window's sum by this instead.

    >>> avg_pool2d(np.arange(16).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    x = _spatial(x).astype(np.float64, copy=False)
    geometry = _geometry(x.shape, kernel, stride, padding, 1, ceil_mode)
    total = _windows(x, geometry, 0.0).sum(axis=(-2, -1))
    if divisor_override is not None:
        divisor = _check_int("divisor_override", divisor_override, 1)
        return total / divisor
    k, s, p, _, out = geometry
    rows, cols = (
        _divisors(x.shape[x.ndim - 2 + a], k[a], s[a], p[a], out[a], count_include_pad)
        for a in range(2)
    )
    return total / (rows[:, None] * cols[None, :])


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
