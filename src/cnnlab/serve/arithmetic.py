"""How one unit's value follows from its layer's input: the arithmetic the explainer shows.

One function per kind of layer, each taking the module, the layer's input for one image
(``source``, per sample) and the unit's index, and returning a JSON-ready dict with a ``type``:

- ``conv``: the input patch per channel (zero padding marked), the kernel, the element-wise
  products, their sums, the bias and the total, which equals the unit's value;
- ``pool``: the window, and the winner (max) or the mean (average);
- ``dense``: the largest ``weight x input`` terms, the sum of the rest, the bias and the total;
- ``elementwise`` (activations, batch norm with its formula, dropout) and ``copy`` (flatten,
  space-to-depth): the input value the output comes from.

Sums are taken in float64 from the float32 tensors, so they agree with the network to ~1e-6.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOP_CONTRIBUTIONS = 10  # dense units: how many weight x input terms are listed


def arithmetic(info: Any, module: Any, source: np.ndarray, index, value: float) -> dict:
    """How the unit at ``index`` of ``module`` follows from the layer's input ``source``.

    ``info`` is the layer's :class:`cnnlab.serve.explain.LayerInfo` (category, kind, shape).
    """
    if info.category == "conv" and source.ndim == 3:
        return conv_arithmetic(module, source, *index)
    if info.category == "pool" and type(module).__name__ in ("MaxPool2d", "AvgPool2d"):
        return pool_arithmetic(module, source, *index)
    if info.category == "dense":
        return dense_arithmetic(module, source, index[0])
    if source.shape == info.shape:  # element-wise: activations, batch norm, dropout
        doc = {"type": "elementwise", "input": float(source[index]), "output": value}
        if "Norm" in info.kind and getattr(module, "running_mean", None) is not None:
            c = index[0]
            doc["norm"] = {
                "mean": float(module.running_mean[c]),
                "var": float(module.running_var[c]),
                "eps": float(module.eps),
                "weight": float(module.weight.detach()[c]) if module.weight is not None else 1.0,
                "bias": float(module.bias.detach()[c]) if module.bias is not None else 0.0,
            }
        return doc
    if source.size == int(np.prod(info.shape)) and info.kind == "Flatten":
        return {
            "type": "copy",
            "source": [int(i) for i in np.unravel_index(index[0], source.shape)],
            "input": float(source.reshape(-1)[index[0]]),
        }
    if info.kind == "PixelUnshuffle":
        r = module.downscale_factor
        c, y, x = index
        src = (c // (r * r), y * r + (c % (r * r)) // r, x * r + c % r)
        return {"type": "copy", "source": list(src), "input": float(source[src])}
    return {"type": "none"}


def _pairs(module: Any):
    from cnnlab.models.summary import _window

    return _window(module)


def _window_rows(k, s, p, d, at: int, axis: int) -> np.ndarray:
    """Input coordinates under a window placed at output position ``at`` on ``axis``."""
    return at * s[axis] - p[axis] + np.arange(k[axis]) * d[axis]


def conv_arithmetic(module: Any, source: np.ndarray, channel: int, row: int, col: int) -> dict:
    """Patch (with zero padding), kernel, element-wise products, their sum and the bias.

    ``source`` is the conv's input (C_in, H, W). Only the input channels of the unit's group
    take part (all of them unless the conv is grouped). Sums are in float64.
    """
    if getattr(module, "padding_mode", "zeros") != "zeros":
        return {"type": "none", "reason": f"padding_mode={module.padding_mode!r}"}
    k, s, p, d = _pairs(module)
    per_group = module.in_channels // module.groups
    group = channel // (module.out_channels // module.groups)
    channels = np.arange(group * per_group, (group + 1) * per_group)
    ys = _window_rows(k, s, p, d, row, 0)
    xs = _window_rows(k, s, p, d, col, 1)
    h, w = source.shape[1:]
    inside = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    patch = np.zeros((per_group, k[0], k[1]))
    yy, xx = np.meshgrid(np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1), indexing="ij")
    patch[:] = np.where(inside, source[channels][:, yy, xx], 0.0)
    kernel = module.weight[channel].detach().double().numpy()
    products = patch * kernel
    sums = products.sum(axis=(1, 2))
    bias = float(module.bias.detach()[channel]) if module.bias is not None else 0.0
    total = float(sums.sum()) + bias
    return {
        "type": "conv",
        "kernel_size": list(k),
        "stride": list(s),
        "padding": list(p),
        "dilation": list(d),
        "in_channels": channels.tolist(),
        "rows": ys.tolist(),  # input rows the kernel's rows land on (negative: padding)
        "cols": xs.tolist(),
        "padded": (~inside).tolist(),  # True where the patch is padding (a zero)
        "patch": patch.tolist(),  # (C_in, kh, kw)
        "kernel": kernel.tolist(),
        "products": products.tolist(),
        "channel_sums": sums.tolist(),
        "sum": float(sums.sum()),
        "bias": bias,
        "total": total,
    }


def pool_arithmetic(module: Any, source: np.ndarray, channel: int, row: int, col: int) -> dict:
    """The pooling window on the input channel: which value won (max) or their mean (avg)."""
    k, s, p, d = _pairs(module)
    if type(module).__name__ == "AvgPool2d":
        d = (1, 1)
    ys = _window_rows(k, s, p, d, row, 0)
    xs = _window_rows(k, s, p, d, col, 1)
    h, w = source.shape[1:]
    inside = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    yy, xx = np.meshgrid(np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1), indexing="ij")
    window = source[channel][yy, xx].astype(np.float64)
    doc = {
        "type": "pool",
        "op": "max" if type(module).__name__ == "MaxPool2d" else "mean",
        "kernel_size": list(k),
        "stride": list(s),
        "padding": list(p),
        "rows": ys.tolist(),
        "cols": xs.tolist(),
        "padded": (~inside).tolist(),
    }
    if doc["op"] == "max":
        window = np.where(inside, window, -np.inf)
        winner = np.unravel_index(int(np.argmax(window)), window.shape)
        doc.update(winner=[int(winner[0]), int(winner[1])], result=float(window[winner]))
    else:
        window = np.where(inside, window, 0.0)
        count = window.size if module.count_include_pad else int(inside.sum())
        doc.update(result=float(window.sum() / max(count, 1)), count=count)
    doc["window"] = np.where(np.isfinite(window), window, 0.0).tolist()
    return doc


def dense_arithmetic(module: Any, source: np.ndarray, unit: int) -> dict:
    """``value = sum_i w[unit, i] * x_i + b``, with the largest terms listed."""
    x = source.reshape(-1).astype(np.float64)
    weight = module.weight[unit].detach().double().numpy()
    terms = weight * x
    order = np.argsort(-np.abs(terms), kind="stable")[:TOP_CONTRIBUTIONS]
    bias = float(module.bias.detach()[unit]) if module.bias is not None else 0.0
    return {
        "type": "dense",
        "inputs": int(x.size),
        "top": [
            {
                "index": int(i),
                "input": float(x[i]),
                "weight": float(weight[i]),
                "product": float(terms[i]),
            }
            for i in order
        ],
        "rest": float(terms.sum() - terms[order].sum()),
        "sum": float(terms.sum()),
        "bias": bias,
        "total": float(terms.sum()) + bias,
    }
