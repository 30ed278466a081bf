"""Exact integer correlation: int64 direct sums, or Python ints when int64 could overflow.

Integer (and boolean) inputs never go through float64: a float64 sum is exact only up to
``2**53``, so ``conv1d([2**27 + 1], [2**27 + 1])`` would lose its last digit. Instead:

* if ``max|x| * sum|w|`` (a bound on every partial sum) stays below ``2**62``, the taps are
  summed in int64, one vectorised multiply-add per non-zero tap;
* otherwise they are summed in Python ints (exact, slower); a result outside the int64 range
  raises :class:`~cnnlab.errors.CnnlabError` instead of wrapping around.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError

INT64 = np.iinfo(np.int64)
SAFE_BOUND = 2.0**62  # below this, no partial sum can reach the int64 limits (2**63)


def python_ints(a: np.ndarray) -> np.ndarray:
    """An object array of Python ints (never NumPy integers, whose products can overflow)."""
    out = np.empty(a.shape, dtype=object)
    out.reshape(-1)[:] = [int(v) for v in a.flat]
    return out


def _fits_int64(a: np.ndarray) -> bool:
    return a.dtype.kind == "i" or (int(a.max()) <= INT64.max and int(a.min()) >= INT64.min)


def _tap_sum(xp, k, stride, dilation, out_shape, dtype):
    """``out[i, j] = sum_ab xp[i*s1 + a*d1, j*s2 + b*d2] * k[a, b]`` over the non-zero taps."""
    out = np.zeros(out_shape, dtype=dtype)
    product = np.empty(out_shape, dtype=dtype)  # one buffer for every tap's product
    (s1, s2), (d1, d2), (h, w) = stride, dilation, out_shape
    for a, b in zip(*np.nonzero(k != 0), strict=True):
        r, c = a * d1, b * d2
        view = xp[r : r + s1 * (h - 1) + 1 : s1, c : c + s2 * (w - 1) + 1 : s2]
        np.multiply(view, k[a, b], out=product)
        out += product
    return out


def correlate_exact(x, k, pads, stride, dilation, out_shape) -> np.ndarray:
    """Zero-padded, strided, dilated correlation of integer arrays, exact, as int64.

    ``x`` and ``k`` are 2-D integer arrays (``k`` not dilated, already flipped for a
    convolution); ``pads`` = ((top, bottom), (left, right)); ``out_shape`` is the checked
    output size.
    """
    bound = float(max(abs(int(x.max())), abs(int(x.min())))) * float(
        np.abs(k.astype(np.float64)).sum()
    )
    if bound < SAFE_BOUND and _fits_int64(x) and _fits_int64(k):
        xp = np.pad(x.astype(np.int64, copy=False), pads)
        if xp.shape[0] == 1 == k.shape[0] and dilation[1] == 1 and k.shape[1] > 1:
            # 1-D: numpy's compiled int64 correlate, then keep every stride-th value
            full = np.correlate(xp[0], k[0].astype(np.int64, copy=False), "valid")
            return full[:: stride[1]][None, : out_shape[1]]
        return _tap_sum(xp, k.astype(np.int64, copy=False), stride, dilation, out_shape, np.int64)
    # Python ints: exact at any size; only the final result must fit in int64.
    xp = np.zeros([n + a + b for n, (a, b) in zip(x.shape, pads, strict=True)], dtype=object)
    rows, cols = pads[0][0], pads[1][0]
    xp[rows : rows + x.shape[0], cols : cols + x.shape[1]] = python_ints(x)
    out = _tap_sum(xp, python_ints(k), stride, dilation, out_shape, object)
    lo, hi = min(out.flat), max(out.flat)
    if lo < INT64.min or hi > INT64.max:
        bad = lo if lo < INT64.min else hi
        raise CnnlabError(
            f"the exact integer result {bad} does not fit in int64; "
            "pass float input for a rounded result"
        )
    return out.astype(np.int64)
