"""Readable loop implementations: the definitions the fast paths are tested against.

Nothing here is vectorised on purpose: each function is the textbook formula written as
nested loops over output positions, so a reader can check it against the notebook by eye.
They are slow (use small inputs) and are not part of the public API's speed promise.
"""

from __future__ import annotations

import numpy as np


def zero_pad(x: np.ndarray, pads: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Copy ``x`` into the middle of a larger array of zeros."""
    x = np.asarray(x, dtype=np.float64)
    shape = tuple(n + a + b for n, (a, b) in zip(x.shape, pads, strict=True))
    out = np.zeros(shape)
    out[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, pads, strict=True))] = x
    return out


def correlate2d_loops(x, k, pads=((0, 0), (0, 0)), stride=(1, 1), dilation=(1, 1)):
    """``Y[i, j] = sum_{a, b} Xpad[i*s1 + a*d1, j*s2 + b*d2] * K[a, b]``."""
    xp = zero_pad(x, pads)
    k = np.asarray(k, dtype=np.float64)
    (m1, m2), (s1, s2), (d1, d2) = k.shape, stride, dilation
    rows = (xp.shape[0] - d1 * (m1 - 1) - 1) // s1 + 1
    cols = (xp.shape[1] - d2 * (m2 - 1) - 1) // s2 + 1
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for a in range(m1):
                for b in range(m2):
                    total += xp[i * s1 + a * d1, j * s2 + b * d2] * k[a, b]
            out[i, j] = total
    return out


def conv2d_loops(x, k, pads=((0, 0), (0, 0)), stride=(1, 1), dilation=(1, 1)):
    """True convolution: correlation with the kernel rotated by 180 degrees (``W[::-1, ::-1]``)."""
    return correlate2d_loops(x, np.asarray(k)[::-1, ::-1], pads, stride, dilation)


def conv1d_loops(x, w, pads=(0, 0), stride=1):
    """1-D true convolution: ``y[i] = sum_k xpad[i*s + k] * w[m - 1 - k]``."""
    xp = zero_pad(x, (pads,))
    w = np.asarray(w, dtype=np.float64)[::-1]
    n_out = (len(xp) - len(w)) // stride + 1
    return np.array([sum(xp[i * stride + k] * w[k] for k in range(len(w))) for i in range(n_out)])


def conv2d_nchw_loops(x, w, bias=None, stride=(1, 1), pads=((0, 0), (0, 0)), groups=1):
    """Batched multi-channel correlation, one output channel at a time (torch's conv2d)."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    n, c = x.shape[:2]
    o, cg = w.shape[:2]
    per_group = o // groups
    outs = []
    for b in range(n):
        maps = []
        for oc in range(o):
            g = oc // per_group
            acc = sum(
                correlate2d_loops(x[b, g * cg + ci], w[oc, ci], pads, stride) for ci in range(cg)
            )
            maps.append(acc + (0.0 if bias is None else bias[oc]))
        outs.append(maps)
    return np.array(outs)


def pool2d_loops(x, k, stride, pad=(0, 0), kind="max"):
    """Max / average (zeros of padding counted) pooling of a 2-D array, window by window."""
    x = np.asarray(x, dtype=np.float64)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.full((x.shape[0] + 2 * pad[0], x.shape[1] + 2 * pad[1]), fill)
    xp[pad[0] : pad[0] + x.shape[0], pad[1] : pad[1] + x.shape[1]] = x
    rows = (xp.shape[0] - k[0]) // stride[0] + 1
    cols = (xp.shape[1] - k[1]) // stride[1] + 1
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            window = xp[i * stride[0] : i * stride[0] + k[0], j * stride[1] : j * stride[1] + k[1]]
            out[i, j] = window.max() if kind == "max" else window.sum() / (k[0] * k[1])
    return out


def depth_pool_loops(x, size, stride, kind="max"):
    """Pool a channels-last array over its last axis, 'valid' windows."""
    x = np.asarray(x, dtype=np.float64)
    c = x.shape[-1]
    starts = range(0, c - size + 1, stride)
    reduce = np.max if kind == "max" else np.mean
    return np.stack([reduce(x[..., s : s + size], axis=-1) for s in starts], axis=-1)


def notebook_conv2d(X, W, p=(0, 0), s=(1, 1)):
    """Notebook 000's naive ``conv2d``, verbatim in substance (used by bench/conv.py).

    Note its loop ranges are only right for stride 1, as in the notebook.
    """
    W_rot = np.array(W)[::-1, ::-1]
    X_orig = np.array(X)
    n1 = X_orig.shape[0] + 2 * p[0]
    n2 = X_orig.shape[1] + 2 * p[1]
    X_padded = np.zeros(shape=(n1, n2))
    X_padded[p[0] : p[0] + X_orig.shape[0], p[1] : p[1] + X_orig.shape[1]] = X_orig
    res = []
    for i in range(0, int((X_padded.shape[0] - W_rot.shape[0]) / s[0]) + 1, s[0]):
        res.append([])
        for j in range(0, int((X_padded.shape[1] - W_rot.shape[1]) / s[1]) + 1, s[1]):
            X_sub = X_padded[i : i + W_rot.shape[0], j : j + W_rot.shape[1]]
            res[-1].append(np.sum(X_sub * W_rot))
    return np.array(res)
