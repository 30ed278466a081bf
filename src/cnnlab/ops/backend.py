"""The fast 2-D engine behind :mod:`cnnlab.ops.conv`: zero-padded, strided, dilated correlation.

Everything in the public API reduces to one problem: correlate a float64 image ``x`` with a
float64 kernel ``k`` after padding ``x`` with zeros, then keep every ``stride``-th output.
Two exact methods solve it:

* ``direct``: ``scipy.ndimage.correlate`` (compiled sliding window, cost ~ pixels x taps).
  Its zero padding (``mode="constant"``) and ``origin`` let 'same' and 'valid' run without
  copying the image.
* ``fft``: real FFTs of the smallest fast size that avoids wrap-around in the rows and columns
  we keep (smaller than the 'full' size ``fftconvolve`` uses for 'same' and 'valid'), with the
  kernel's row transform taken on its few non-zero rows only.

:func:`choose_method` picks the cheaper one from a cost model calibrated on this machine with
``bench/conv.py`` (like ``scipy.signal.choose_conv_method`` but for these two methods).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
import scipy.ndimage as ndi

# Seconds per multiply-add of ndimage.correlate and per (point x log2 points) of a 2-D real FFT
# pass. Only their ratio matters: it puts the crossover where forced direct / fft runs cross on
# the bench machine (kernels ~6x6 at 64^2 and 256^2, ~7x7 at 1024^2; see bench/conv.py).
DIRECT_COST = 1.2e-9
FFT_COST = 0.9e-9
FFT_PASSES = 3  # forward image, inverse product, plus the (cheap) kernel transform


def dilate_kernel(k: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """Insert ``d - 1`` zeros between taps (ndimage skips zero taps, so this costs nothing)."""
    d1, d2 = dilation
    if d1 == 1 and d2 == 1:
        return k
    out = np.zeros(((k.shape[0] - 1) * d1 + 1, (k.shape[1] - 1) * d2 + 1), dtype=k.dtype)
    out[::d1, ::d2] = k
    return out


def _lengths(n: int, m: int, pads: tuple[int, int]) -> int:
    """Stride-1 output length of a 'valid' correlation of the padded input."""
    return n + pads[0] + pads[1] - m + 1


def choose_method(x_shape: tuple[int, int], k: np.ndarray, out_shape: tuple[int, int]) -> str:
    """``"direct"`` or ``"fft"``, whichever the cost model says is faster."""
    taps = int(np.count_nonzero(k))
    direct = DIRECT_COST * out_shape[0] * out_shape[1] * max(taps, 1)
    size = (x_shape[0] + k.shape[0]) * (x_shape[1] + k.shape[1])
    fft = FFT_COST * FFT_PASSES * size * math.log2(max(size, 2))
    return "direct" if direct <= fft else "fft"


def correlate_padded(
    x: np.ndarray,
    k: np.ndarray,
    pads: tuple[tuple[int, int], tuple[int, int]],
    stride: tuple[int, int] = (1, 1),
    method: str = "auto",
) -> np.ndarray:
    """``out[i, j] = sum_ab xpad[i*s1 + a, j*s2 + b] * k[a, b]`` ('valid' on the padded input).

    ``x`` and ``k`` are 2-D float64 and finite; ``pads`` = ((top, bottom), (left, right)). The
    caller has checked that the kernel fits the padded input. ``k`` is already dilated.
    """
    lens = (_lengths(x.shape[0], k.shape[0], pads[0]), _lengths(x.shape[1], k.shape[1], pads[1]))
    if method == "auto":
        method = choose_method(x.shape, k, lens)
    if method == "direct":
        full = _direct(x, k, pads, lens)
    elif method == "fft":
        full = _fft(x, k, pads, lens)
    else:
        raise ValueError(f"method={method!r}")
    if stride != (1, 1):
        full = full[:: stride[0], :: stride[1]]
    return full


def _direct(x, k, pads, lens):
    """ndimage.correlate, padding the image only where its origin trick cannot reach."""
    extra, origin = [], []
    for axis in range(2):
        n, m, before, length = x.shape[axis], k.shape[axis], pads[axis][0], lens[axis]
        add_before = max(0, before - (m - 1))  # ndimage's window centre lies inside the kernel
        add_after = max(0, length - (n + add_before))  # its output is as long as its input
        extra.append((add_before, add_after))
        origin.append((before - add_before) - m // 2)
    if any(a or b for a, b in extra):
        x = np.pad(x, extra)
    # ndimage ignores taps with |w| <= DBL_EPSILON; scaling the kernel to max |w| = 1 keeps
    # every tap that matters at float64 precision.
    scale = float(np.max(np.abs(k))) or 1.0
    out = ndi.correlate(x, k / scale, mode="constant", cval=0.0, origin=origin)
    out = out[: lens[0], : lens[1]]
    if scale != 1.0:
        out *= scale
    return out


def _fft_axis_size(n: int, m: int, first: int, last: int) -> int:
    """Smallest fast FFT length with no wrap-around in full-conv indices ``first..last``."""
    need = max(last + 1, n + m - 1 - first, 1)
    return sfft.next_fast_len(need, real=True)


def _fft(x, k, pads, lens):
    """Correlation as a convolution with the flipped kernel, via real FFTs."""
    kf = k[::-1, ::-1]
    n0, n1 = x.shape
    m0, m1 = k.shape
    # Output index i of the padded correlation is index i + m - 1 - before of the full
    # convolution; clip to the part that can be non-zero and zero-fill the rest.
    starts = (m0 - 1 - pads[0][0], m1 - 1 - pads[1][0])
    lo = [max(starts[a], 0) for a in range(2)]
    full_len = (n0 + m0 - 1, n1 + m1 - 1)
    hi = [min(starts[a] + lens[a], full_len[a]) - 1 for a in range(2)]
    if hi[0] < lo[0] or hi[1] < lo[1]:
        return np.zeros(lens, dtype=np.float64)
    s0 = _fft_axis_size(n0, m0, lo[0], hi[0])
    s1 = _fft_axis_size(n1, m1, lo[1], hi[1])
    fx = sfft.rfft2(x, s=(s0, s1))
    fk = sfft.rfft(kf, n=s1, axis=1)  # the kernel's few rows only, then down the columns
    fk = sfft.fft(fk, n=s0, axis=0, overwrite_x=True)
    fx *= fk
    # invert the columns, then only the rows we keep
    fx = sfft.ifft(fx, axis=0, overwrite_x=True)[lo[0] : hi[0] + 1]
    conv = sfft.irfft(fx, n=s1, axis=1, overwrite_x=True)[:, lo[1] : hi[1] + 1]
    r0, c0 = lo[0] - starts[0], lo[1] - starts[1]
    if (r0, c0) == (0, 0) and conv.shape == lens:
        return conv  # 'same' / 'valid' / 'full': no zero border to add
    out = np.zeros(lens, dtype=np.float64)
    out[r0 : r0 + conv.shape[0], c0 : c0 + conv.shape[1]] = conv
    return out
