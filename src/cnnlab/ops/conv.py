"""Discrete convolution and cross-correlation in 1-D and 2-D, exact and vectorised.

``conv1d`` / ``conv2d`` compute TRUE convolution (the kernel is flipped, as ``numpy.convolve``
and ``scipy.signal.convolve2d`` do); ``correlate1d`` / ``correlate2d`` slide the kernel as it
is, which is what deep-learning "convolution" layers compute. ``conv2d_nchw`` is the batched,
multi-channel layer form and matches ``torch.nn.functional.conv2d``.

Padding is ``"valid"`` (none), ``"same"`` (output ``ceil(n / stride)``), ``"full"`` (every
partial overlap), an int ``p`` or explicit pairs. ``"same"`` follows TensorFlow's rule: the
total padding ``max((ceil(n/s) - 1) s + d(m - 1) + 1 - n, 0)`` is split evenly and an odd
extra zero goes on the bottom/right. PyTorch refuses ``"same"`` with stride > 1; we support it.
One exception keeps us equal to numpy/scipy: a true convolution with stride 1 puts the odd
extra zero on the top/left, exactly as ``scipy.signal.convolve2d(mode="same")`` does for
even-sized kernels.

Inputs and kernels must be real and finite (NaN/inf raise ``CnnlabError``: the FFT method
would smear them over the whole output). Integer inputs give int64 outputs (computed exactly
by the direct method), float inputs keep the wider float type.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.ops import backend
from cnnlab.ops.shapes import output_size, pair, resolve_padding

METHODS = ("auto", "direct", "fft")


def as_real_array(a, name: str, ndim: int) -> np.ndarray:
    """Validate an input: numeric, real, finite, non-empty, with ``ndim`` dimensions."""
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:
        raise CnnlabError(f"{name} is not a numeric array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "b":
        arr, kind = arr.astype(np.int64), "i"
    if kind not in "iuf":
        raise CnnlabError(f"{name} has dtype {arr.dtype}; expected real numbers")
    if arr.ndim != ndim:
        raise CnnlabError(f"{name} has shape {arr.shape}; expected {ndim} dimensions")
    if arr.size == 0:
        raise CnnlabError(f"{name} is empty (shape {arr.shape})")
    if kind == "f" and not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)].flat[0]
        raise CnnlabError(f"{name} contains {bad} (NaN/inf are not allowed)")
    return arr


def _result_dtype(x: np.ndarray, w: np.ndarray) -> np.dtype:
    if x.dtype.kind in "iu" and w.dtype.kind in "iu":
        return np.dtype(np.int64)
    return np.result_type(x.dtype, w.dtype, np.float32)


def _axis_padding(padding, n, m, s, d, flip, axis):
    """One axis of a 2-D padding spec: str, int, (p1, p2) per axis, or ((t, b), (l, r))."""
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        if len(padding) != 2:
            raise CnnlabError(f"padding={tuple(padding)!r} must be one int or a pair")
        padding = padding[axis]
    return resolve_padding(n, m, padding, s, d, flip=flip)


def _run(x, w, padding, stride, dilation, method, flip, name="x"):
    """Shared body of conv2d / correlate2d on validated 2-D arrays."""
    if method not in METHODS:
        raise CnnlabError(f"method={method!r} is not one of {', '.join(METHODS)}")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = []
    for axis in range(2):
        n, m = x.shape[axis], w.shape[axis]
        p = _axis_padding(padding, n, m, stride[axis], dilation[axis], flip, axis)
        output_size(n, m, p, stride[axis], dilation[axis])  # validates, raises with values
        pads.append(p)
    dtype = _result_dtype(x, w)
    k = np.asarray(w, dtype=np.float64)
    k = backend.dilate_kernel(k[::-1, ::-1] if flip else k, dilation)
    if dtype.kind == "i":
        method = "direct"  # exact for integers up to 2**53
    out = backend.correlate_padded(
        np.asarray(x, dtype=np.float64), k, (pads[0], pads[1]), stride, method
    )
    if dtype.kind == "i":
        return np.rint(out).astype(np.int64)
    return out.astype(dtype, copy=False)


def conv2d(
    x,
    w,
    padding: str | int | Sequence = "valid",
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    method: str = "auto",
) -> np.ndarray:
    """True 2-D convolution ``Y[i, j] = sum_ab Xpad[i*s + a, j*s + b] * W[m1-1-a, m2-1-b]``.

    Args:
        x: input matrix (H, W).
        w: kernel (m1, m2); any size, even or odd.
        padding: "valid", "same" (TensorFlow rule, see module docstring), "full", int p,
            (p1, p2) per axis, or ((top, bottom), (left, right)).
        stride: s or (s1, s2).
        dilation: d or (d1, d2) (spacing between kernel taps).
        method: "auto" (cheaper of the two by a cost model), "direct" or "fft".

    Returns:
        The output matrix; equals ``scipy.signal.convolve2d(x, w, mode)`` for the modes they
        share.

    >>> conv2d([[1, 3, 2, 4], [5, 6, 1, 3], [1, 2, 0, 2], [3, 4, 3, 2]],
    ...        [[1, 0, 3], [1, 2, 1], [0, 1, 1]])
    array([[25, 24],
           [28, 25]])
    """
    x, w = as_real_array(x, "input", 2), as_real_array(w, "kernel", 2)
    return _run(x, w, padding, stride, dilation, method, flip=True)


def correlate2d(
    x,
    w,
    padding: str | int | Sequence = "valid",
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    method: str = "auto",
) -> np.ndarray:
    """2-D cross-correlation (no flip), what deep-learning conv layers compute.

    Same arguments as :func:`conv2d`. ``"same"`` always follows TensorFlow/PyTorch (extra zero
    bottom/right).

    >>> correlate2d([[200] * 5] * 3 + [[0] * 5] * 3, [[10, 10, 10], [0, 0, 0], [-10, -10, -10]])
    array([[   0,    0,    0],
           [6000, 6000, 6000],
           [6000, 6000, 6000],
           [   0,    0,    0]])
    """
    x, w = as_real_array(x, "input", 2), as_real_array(w, "kernel", 2)
    return _run(x, w, padding, stride, dilation, method, flip=False)


def _padding_1d(padding):
    """1-D padding: a str, int p, or (before, after) -> a 2-D spec for the column axis."""
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        return (0, tuple(padding))
    return (0, padding) if not isinstance(padding, str) else ("valid", padding)


def conv1d(
    x, w, padding: str | int | Sequence[int] = "valid", stride: int = 1, *, method: str = "auto"
) -> np.ndarray:
    """True 1-D convolution (kernel flipped), equal to ``numpy.convolve`` in shared modes.

    Args:
        x: input vector (n,).
        w: kernel (m,).
        padding: "valid", "same", "full", int p (p zeros each side) or (before, after).
        stride: s.
        method: "auto", "direct" or "fft".

    >>> conv1d([1, 3, 2, 4, 5, 6, 1, 3], [1, 0, 3, 1, 2], padding=2)
    array([ 5, 14, 16, 26, 24, 34, 19, 22])
    """
    x, w = as_real_array(x, "input", 1), as_real_array(w, "kernel", 1)
    return _run(x[None, :], w[None, :], _padding_1d(padding), (1, stride), 1, method, True)[0]


def correlate1d(
    x, w, padding: str | int | Sequence[int] = "valid", stride: int = 1, *, method: str = "auto"
) -> np.ndarray:
    """1-D cross-correlation (no flip); same arguments as :func:`conv1d`.

    >>> correlate1d([1, 2, 3, 4], [1, -1])
    array([-1, -1, -1])
    """
    x, w = as_real_array(x, "input", 1), as_real_array(w, "kernel", 1)
    return _run(x[None, :], w[None, :], _padding_1d(padding), (1, stride), 1, method, False)[0]


def _nchw_padding(padding, h, w, kh, kw, stride, dilation):
    """Per-axis (before, after) for conv2d_nchw (correlation: 'same' puts extras bottom/right)."""
    if isinstance(padding, str) or not isinstance(padding, Sequence):
        return [
            resolve_padding(n, m, padding, s, d)
            for n, m, s, d in zip((h, w), (kh, kw), stride, dilation, strict=True)
        ]
    if len(padding) != 2:
        raise CnnlabError(f"padding={tuple(padding)!r} must be one int or a pair")
    return [
        resolve_padding(n, m, p, s, d)
        for n, m, p, s, d in zip((h, w), (kh, kw), padding, stride, dilation, strict=True)
    ]


def conv2d_nchw(
    x,
    w,
    bias=None,
    stride: int | tuple[int, int] = 1,
    padding: str | int | Sequence = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """Batched multi-channel cross-correlation, the maths of ``torch.nn.functional.conv2d``.

    Args:
        x: input (N, C, H, W).
        w: weights (O, C // groups, kh, kw).
        bias: (O,) or None.
        stride, padding, dilation: as in :func:`correlate2d` (padding int, pair, "valid",
            "same" or "full").
        groups: input and output channels are split into this many independent groups.

    Returns:
        float64 (N, O, H_out, W_out).

    >>> conv2d_nchw(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), bias=[0, 1]).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]], [[5.0, 5.0], [5.0, 5.0]]]]
    """
    x = as_real_array(x, "input", 4).astype(np.float64, copy=False)
    w = as_real_array(w, "weight", 4).astype(np.float64, copy=False)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g = int(groups)
    if g < 1 or c % g or o % g or cg != c // g:
        raise CnnlabError(
            f"groups={groups} does not fit input channels {c}, weight shape {w.shape} "
            f"(need C % groups == 0, O % groups == 0, weight.shape[1] == C // groups)"
        )
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = _nchw_padding(padding, h, wd, kh, kw, stride, dilation)
    ho = output_size(h, kh, pads[0], stride[0], dilation[0])
    wo = output_size(wd, kw, pads[1], stride[1], dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    win = win[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]][:, :, :ho, :wo]
    # (N, G, Cg, Ho, Wo, kh, kw) -> (N, G, Ho*Wo, Cg*kh*kw): one matrix product per group.
    cols = win.reshape(n, g, cg, ho, wo, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6)
    cols = cols.reshape(n, g, ho * wo, cg * kh * kw)
    wg = w.reshape(g, o // g, cg * kh * kw).transpose(0, 2, 1)
    out = np.matmul(cols, wg)  # (N, G, Ho*Wo, O/G)
    out = out.transpose(0, 1, 3, 2).reshape(n, o, ho, wo)
    if bias is not None:
        b = as_real_array(bias, "bias", 1).astype(np.float64, copy=False)
        if b.shape != (o,):
            raise CnnlabError(f"bias has shape {b.shape}; expected ({o},)")
        out = out + b[None, :, None, None]
    return out
