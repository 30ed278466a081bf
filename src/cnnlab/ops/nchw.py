"""The batched, multi-channel convolution layer of deep learning: ``conv2d_nchw``.

It is cross-correlation (no kernel flip) over (N, C, H, W) arrays, with torch's arguments
(stride, padding, dilation, groups, padding_mode) and results.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.ops.boundary import pad_array
from cnnlab.ops.conv import as_real_array
from cnnlab.ops.shapes import output_size, pair, resolve_padding


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
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Batched multi-channel cross-correlation, the maths of ``torch.nn.functional.conv2d``.

    Args:
        x: input (N, C, H, W), or unbatched (C, H, W) as torch accepts it.
        w: weights (O, C // groups, kh, kw).
        bias: (O,) or None.
        stride, padding, dilation: as in :func:`correlate2d` (padding int, pair, "valid",
            "same" or "full").
        groups: input and output channels are split into this many independent groups.
        padding_mode: "zeros", "reflect", "replicate" or "circular", as in
            ``torch.nn.Conv2d(padding_mode=...)`` (also "symmetric"; "constant" is "zeros").

    Returns:
        float64 (N, O, H_out, W_out), or (O, H_out, W_out) for an unbatched input.

    >>> conv2d_nchw(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), bias=[0, 1]).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]], [[5.0, 5.0], [5.0, 5.0]]]]
    """
    arr = np.asarray(x)
    if arr.ndim == 3:  # unbatched (C, H, W), as torch.nn.functional.conv2d accepts it
        out = conv2d_nchw(arr[None], w, bias, stride, padding, dilation, groups, padding_mode)
        return out[0]
    if arr.ndim != 4:
        raise CnnlabError(f"input has shape {arr.shape}; expected (N, C, H, W) or (C, H, W)")
    x = as_real_array(arr, "input", 4).astype(np.float64, copy=False)
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
    xp = pad_array(x, pads, padding_mode)
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
