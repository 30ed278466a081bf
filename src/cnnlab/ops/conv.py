"""Discrete convolution and cross-correlation in 1-D and 2-D, exact and vectorised.

``conv1d`` / ``conv2d`` compute TRUE convolution (the kernel is flipped, as ``numpy.convolve``
and ``scipy.signal.convolve2d`` do); ``correlate1d`` / ``correlate2d`` slide the kernel as it
is, which is what deep-learning "convolution" layers compute. The batched, multi-channel
layer form is :func:`cnnlab.ops.nchw.conv2d_nchw`.

Padding is ``"valid"`` (none), ``"same"`` (output ``ceil(n / stride)``), ``"full"`` (every
partial overlap), an int ``p`` or explicit pairs. ``"same"`` follows TensorFlow's rule: the
total padding ``max((ceil(n/s) - 1) s + d(m - 1) + 1 - n, 0)`` is split evenly and an odd
extra zero goes on the bottom/right. PyTorch refuses ``"same"`` with stride > 1; we support it.
One exception keeps us equal to numpy/scipy: a true convolution with stride 1 puts the odd
extra zero on the top/left, exactly as ``scipy.signal.convolve2d(mode="same")`` does for
even-sized kernels.

``"same"`` returns the INPUT's length, as ``scipy.signal.convolve(x, w, "same")`` does, also
when the kernel is longer than the input; ``numpy.convolve(x, w, "same")`` returns
``max(len(x), len(w))`` instead, so the two agree only when the kernel is not longer.
``"valid"`` with a kernel at least as large as the input in every dimension swaps the two,
as NumPy and SciPy do (a correlation's result then comes out reversed, as theirs does); with a
stride or dilation, or when neither array fits inside the other, it raises.

``padding_mode`` says what the padding holds: ``"zeros"`` (default), ``"constant"``
(``fillvalue``), ``"reflect"``, ``"replicate"``, ``"symmetric"`` or ``"circular"``; see
:mod:`cnnlab.ops.boundary` for the torch / SciPy / NumPy names of each.

Inputs and kernels must be real and finite (NaN/inf raise ``CnnlabError``: the FFT method
would smear them over the whole output). Float inputs keep the wider float type. Integer
inputs give int64 outputs computed EXACTLY in integer arithmetic (never through float64, see
:mod:`cnnlab.ops.integer`); a result outside the int64 range raises. Booleans are integers
0 and 1: ``conv1d([True, True, False], [True, True], "full")`` COUNTS the overlapping pairs,
``[1, 2, 1, 0]``; ``numpy.convolve`` returns booleans (their logical OR), which is
``conv1d(...) > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.ops import backend
from cnnlab.ops.boundary import check_padding_mode, pad_array
from cnnlab.ops.integer import correlate_exact, python_ints
from cnnlab.ops.shapes import output_size, pair, resolve_padding

METHODS = ("auto", "direct", "fft")


def _object_ints(arr: np.ndarray, name: str, big_ints: bool) -> np.ndarray:
    """An object array of Python ints: int64 when they fit, else kept (or refused)."""
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in arr.flat):
        raise CnnlabError(f"{name} has dtype object; expected real numbers")
    if all(-(2**63) <= v < 2**63 for v in arr.flat):
        return arr.astype(np.int64)
    if not big_ints:
        big = next(v for v in arr.flat if not -(2**63) <= v < 2**63)
        raise CnnlabError(f"{name} holds {big}, beyond int64; only convolution takes such ints")
    return python_ints(arr)


def as_real_array(a, name: str, ndim: int, *, big_ints: bool = False) -> np.ndarray:
    """Validate an input: numeric, real, finite, non-empty, with ``ndim`` dimensions.

    Booleans become int64 0/1. Python ints beyond int64 (an object array) are kept as they
    are when ``big_ints`` (the exact convolution takes them), else refused.
    """
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:
        raise CnnlabError(f"{name} is not a numeric array: {exc}") from None
    kind = arr.dtype.kind
    if kind == "b":
        arr, kind = arr.astype(np.int64), "i"
    if kind == "O" and arr.size:
        arr = _object_ints(arr, name, big_ints)
        kind = arr.dtype.kind
        if kind == "O":
            kind = "i"  # exact integers, handled by the integer path
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
    if x.dtype.kind in "iuO" and w.dtype.kind in "iuO":
        return np.dtype(np.int64)
    return np.result_type(x.dtype, w.dtype, np.float32)


def _axis_padding(padding, n, m, s, d, flip, axis):
    """One axis of a 2-D padding spec: str, int, (p1, p2) per axis, or ((t, b), (l, r))."""
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        if len(padding) != 2:
            raise CnnlabError(f"padding={tuple(padding)!r} must be one int or a pair")
        padding = padding[axis]
    return resolve_padding(n, m, padding, s, d, flip=flip)


def _is_valid(padding) -> bool:
    """``"valid"``, or the per-axis ``("valid", "valid")`` the 1-D functions pass on."""
    if isinstance(padding, str):
        return padding.lower() == "valid"
    return isinstance(padding, tuple) and all(_is_valid(p) for p in padding)


def _swap_for_valid(x, w, padding, stride, dilation):
    """NumPy's and SciPy's 'valid' rule: a kernel at least as large as the input in every
    dimension (and larger in one) trades places with it. Only for stride 1, dilation 1."""
    if not _is_valid(padding) or stride != (1, 1) or dilation != (1, 1):
        return False
    return all(b >= a for a, b in zip(x.shape, w.shape, strict=True)) and x.shape != w.shape


def _run(x, w, padding, stride, dilation, method, flip, padding_mode="zeros", fillvalue=0):
    """Shared body of conv1d / conv2d / correlate1d / correlate2d on validated 2-D arrays."""
    if method not in METHODS:
        raise CnnlabError(f"method={method!r} is not one of {', '.join(METHODS)}")
    check_padding_mode(padding_mode, fillvalue)
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    if _swap_for_valid(x, w, padding, stride, dilation):
        # convolution is symmetric; a correlation of the swapped pair comes out reversed
        out = _run(w, x, padding, stride, dilation, method, flip, padding_mode, fillvalue)
        return out if flip else out[::-1, ::-1]
    pads, out_shape = [], []
    for axis in range(2):
        n, m = x.shape[axis], w.shape[axis]
        p = _axis_padding(padding, n, m, stride[axis], dilation[axis], flip, axis)
        out_shape.append(output_size(n, m, p, stride[axis], dilation[axis]))  # validates
        pads.append(p)
    if padding_mode != "zeros" and any(pads[0] + pads[1]):
        x, pads = pad_array(x, pads, padding_mode, fillvalue), [(0, 0), (0, 0)]
    dtype = _result_dtype(x, w)
    if dtype.kind == "i":  # exact integer arithmetic, never through float64
        k = w[::-1, ::-1] if flip else w
        return correlate_exact(x, k, (pads[0], pads[1]), stride, dilation, tuple(out_shape))
    if dtype.kind == "O":  # Python ints beyond int64 meet a float: the result is float64
        dtype = np.dtype(np.float64)
    k = np.asarray(w, dtype=np.float64)
    k = backend.dilate_kernel(k[::-1, ::-1] if flip else k, dilation)
    out = backend.correlate_padded(
        np.asarray(x, dtype=np.float64), k, (pads[0], pads[1]), stride, method
    )
    return out.astype(dtype, copy=False)


def conv2d(
    x,
    w,
    padding: str | int | Sequence = "valid",
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    method: str = "auto",
    padding_mode: str = "zeros",
    fillvalue: float = 0,
) -> np.ndarray:
    """True 2-D convolution ``Y[i, j] = sum_ab Xpad[i*s + a, j*s + b] * W[m1-1-a, m2-1-b]``.

    Args:
        x: input matrix (H, W).
        w: kernel (m1, m2); any size, even or odd.
        padding: "valid", "same" (TensorFlow rule, see module docstring), "full", int p,
            (p1, p2) per axis, or ((top, bottom), (left, right)).
        stride: s or (s1, s2).
        dilation: d or (d1, d2) (spacing between kernel taps).
        method: "auto" (cheaper of the two by a cost model), "direct" or "fft" (float input;
            integer input always uses the exact integer direct method).
        padding_mode: "zeros", "constant", "reflect", "replicate", "symmetric" or "circular".
        fillvalue: the padding value of ``padding_mode="constant"``.

    Returns:
        The output matrix; equals ``scipy.signal.convolve2d(x, w, mode, boundary, fillvalue)``
        for the modes they share ("symmetric" is SciPy's "symm", "circular" its "wrap").

    >>> conv2d([[1, 3, 2, 4], [5, 6, 1, 3], [1, 2, 0, 2], [3, 4, 3, 2]],
    ...        [[1, 0, 3], [1, 2, 1], [0, 1, 1]])
    array([[25, 24],
           [28, 25]])
    """
    x, w = as_real_array(x, "input", 2, big_ints=True), as_real_array(w, "kernel", 2, big_ints=True)
    return _run(x, w, padding, stride, dilation, method, True, padding_mode, fillvalue)


def correlate2d(
    x,
    w,
    padding: str | int | Sequence = "valid",
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    *,
    method: str = "auto",
    padding_mode: str = "zeros",
    fillvalue: float = 0,
) -> np.ndarray:
    """2-D cross-correlation (no flip), what deep-learning conv layers compute.

    Same arguments as :func:`conv2d`. ``"same"`` always follows TensorFlow/PyTorch (an odd
    extra zero goes bottom/right; ``scipy.signal.correlate2d`` puts it top/left, so the two
    differ by one position for even-sized kernels).

    >>> correlate2d([[200] * 5] * 3 + [[0] * 5] * 3, [[10, 10, 10], [0, 0, 0], [-10, -10, -10]])
    array([[   0,    0,    0],
           [6000, 6000, 6000],
           [6000, 6000, 6000],
           [   0,    0,    0]])
    """
    x, w = as_real_array(x, "input", 2, big_ints=True), as_real_array(w, "kernel", 2, big_ints=True)
    return _run(x, w, padding, stride, dilation, method, False, padding_mode, fillvalue)


def _padding_1d(padding):
    """1-D padding: a str, int p, or (before, after) -> a 2-D spec for the column axis."""
    if isinstance(padding, Sequence) and not isinstance(padding, str):
        return (0, tuple(padding))
    return (0, padding) if not isinstance(padding, str) else ("valid", padding)


def _run_1d(x, w, padding, stride, dilation, method, flip, padding_mode, fillvalue):
    """conv1d / correlate1d as a one-row conv2d / correlate2d."""
    x, w = as_real_array(x, "input", 1, big_ints=True), as_real_array(w, "kernel", 1, big_ints=True)
    pad, stride, dilation = _padding_1d(padding), (1, stride), (1, dilation)
    return _run(x[None], w[None], pad, stride, dilation, method, flip, padding_mode, fillvalue)[0]


def conv1d(
    x,
    w,
    padding: str | int | Sequence[int] = "valid",
    stride: int = 1,
    dilation: int = 1,
    *,
    method: str = "auto",
    padding_mode: str = "zeros",
    fillvalue: float = 0,
) -> np.ndarray:
    """True 1-D convolution (kernel flipped), equal to ``numpy.convolve`` in shared modes.

    Args:
        x: input vector (n,).
        w: kernel (m,).
        padding: "valid", "same", "full", int p (p zeros each side) or (before, after).
            "same" returns ``n`` values (SciPy's rule); ``numpy.convolve`` returns
            ``max(n, m)``, the same values whenever ``m <= n``.
        stride: s.
        dilation: d (spacing between kernel taps).
        method: "auto", "direct" or "fft" (float input only; integers are always exact).
        padding_mode, fillvalue: what the padding holds, as in :func:`conv2d`.

    Integer and boolean inputs give exact int64 results (booleans count as 0/1; see the
    module docstring).

    >>> conv1d([1, 3, 2, 4, 5, 6, 1, 3], [1, 0, 3, 1, 2], padding=2)
    array([ 5, 14, 16, 26, 24, 34, 19, 22])
    >>> conv1d([2**27 + 1], [2**27 + 1])
    array([18014398777917441])
    """
    return _run_1d(x, w, padding, stride, dilation, method, True, padding_mode, fillvalue)


def correlate1d(
    x,
    w,
    padding: str | int | Sequence[int] = "valid",
    stride: int = 1,
    dilation: int = 1,
    *,
    method: str = "auto",
    padding_mode: str = "zeros",
    fillvalue: float = 0,
) -> np.ndarray:
    """1-D cross-correlation (no flip); same arguments as :func:`conv1d`.

    ``"same"`` is torch's ``F.conv1d(padding="same")`` (see :func:`correlate2d`).

    >>> correlate1d([1, 2, 3, 4], [1, -1])
    array([-1, -1, -1])
    """
    x, w = as_real_array(x, "input", 1, big_ints=True), as_real_array(w, "kernel", 1, big_ints=True)
    pad = _padding_1d(padding)
    return _run(
        x[None, :],
        w[None, :],
        pad,
        (1, stride),
        (1, dilation),
        method,
        False,
        padding_mode,
        fillvalue,
    )[0]
