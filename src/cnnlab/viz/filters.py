"""Filters as pictures: hand-made kernels on a photo, and the kernels a CNN learned.

``plot_filter_grid`` is notebook 000's example 3 and notebook 004's china/flower figures: the
image and its filtered versions side by side, the kernel under each, and (for the sample
photos, as notebook 004 does) a zoomed crop. ``plot_learned_filters`` draws the first conv
layer's kernels of a trained model on one diverging scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.viz._grid import (
    DIVERGING,
    GRAY,
    as_list,
    grid_shape,
    new_figure,
    panel_grid,
    show,
    symmetric_limits,
)
from cnnlab.viz.pooling import Crop, load_photo

DEFAULT_KERNELS = ("sharpen", "edge", "sobel-x", "sobel-y", "vline", "hline")


@dataclass(frozen=True)
class FilterResult:
    image: np.ndarray  # the (gray) input, [0, 1]
    kernels: dict[str, np.ndarray]  # spec -> kernel
    outputs: dict[str, np.ndarray]  # spec -> raw convolution output (same size as image)
    display: dict[str, np.ndarray]  # spec -> output scaled to [0, 1] for showing
    scales: dict[str, str]  # spec -> scaling used
    crop: Crop | None  # zoom box (rows, cols) drawn in the last row


def _auto_scale(kernel: np.ndarray) -> str:
    """How to show a kernel's output: by what the kernel sums to.

    Sum 1 (sharpen, blur) keeps the image's brightness: clip to [0, 1]. Sum 0 (edge, Sobel)
    gives signed, mostly small responses: |response| equalised with CLAHE, as notebook 000
    does. Anything else (line kernels summing to 7): stretch min..max.
    """
    total = float(kernel.sum())
    if abs(total - 1.0) < 1e-6:
        return "clip"
    return "clahe" if abs(total) < 1e-6 else "minmax"


def filter_images(
    image,
    kernels=DEFAULT_KERNELS,
    *,
    crop: Crop | str | None = None,
    boundary: str = "zero",
    scale: str = "auto",
) -> FilterResult:
    """Convolve the gray version of ``image`` with each kernel (``cnnlab.ops.filters``).

    >>> r = filter_images("china", ["sobel-x"])
    >>> r.outputs["sobel-x"].shape
    (427, 640)
    """
    from cnnlab.images import load_named_image
    from cnnlab.ops.filters import apply_kernel, parse_kernel, scale_for_display, to_gray

    specs = as_list(kernels)
    if not specs:
        raise CnnlabError("no kernels given (e.g. --kernels sharpen,edge,sobel-x)")
    arr = image if isinstance(image, np.ndarray) else load_named_image(image)
    gray = to_gray(np.asarray(arr, dtype=np.float64))
    named = image if isinstance(image, str) else None
    _, box = load_photo(gray if named is None else named, crop)  # validates / defaults the crop
    ks = {s: parse_kernel(s) for s in specs}
    outputs = {s: apply_kernel(gray, k, boundary=boundary) for s, k in ks.items()}
    scales = {s: _auto_scale(k) if scale == "auto" else scale for s, k in ks.items()}
    display = {
        s: scale_for_display(np.abs(outputs[s]) if scales[s] == "clahe" else outputs[s], scales[s])
        for s in specs
    }
    return FilterResult(gray, ks, outputs, display, scales, box)


def _kernel_panel(ax, kernel: np.ndarray, title: str) -> None:
    lo, hi = symmetric_limits(kernel)
    show(ax, kernel, cmap=DIVERGING, vmin=lo, vmax=hi)
    ax.set_title(title, fontsize=8)
    if max(kernel.shape) <= 5:
        for (r, c), v in np.ndenumerate(kernel):
            text = f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}".replace("0.", ".")
            color = "white" if abs(v) > 0.6 * hi else "black"  # readable on dark cells
            ax.text(
                c,
                r,
                text,
                ha="center",
                va="center",
                color=color,
                fontsize=8 if kernel.shape[0] <= 3 else 6,
            )


def plot_filter_grid(
    image,
    kernels=DEFAULT_KERNELS,
    *,
    crop: Crop | str | None = None,
    boundary: str = "zero",
    scale: str = "auto",
) -> Figure:
    """Original and filtered images in a grid; kernels underneath; a zoomed crop row."""
    r = filter_images(image, kernels, crop=crop, boundary=boundary, scale=scale)
    cols = 1 + len(r.kernels)
    h, w = r.image.shape
    panel = 1.8
    aspect = h / w
    rows = [panel * aspect, 0.9] + ([panel * 1.15] if r.crop else [])
    fig = new_figure(panel * cols + 0.3, sum(rows) + 1.0)
    grid = fig.add_gridspec(len(rows), cols, height_ratios=rows)
    name = image if isinstance(image, str) else "image"
    panels = [("input (gray)", r.image)] + [
        (f"{s}\n({r.scales[s]})", r.display[s]) for s in r.kernels
    ]
    for c, (title, data) in enumerate(panels):
        show(fig.add_subplot(grid[0, c]), data, title=title, cmap=GRAY, vmin=0, vmax=1)
        if r.crop:
            top, bottom, left, right = r.crop
            show(
                fig.add_subplot(grid[2, c]),
                data[top:bottom, left:right],
                cmap=GRAY,
                vmin=0,
                vmax=1,
                title="crop" if c == 0 else None,
            )
    ax = fig.add_subplot(grid[1, 0])
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        "kernels\n(true convolution,\nred +, blue -)",
        ha="center",
        va="center",
        fontsize=8,
        transform=ax.transAxes,
    )
    for c, k in enumerate(r.kernels.values(), start=1):
        _kernel_panel(fig.add_subplot(grid[1, c]), k, f"{k.shape[0]}x{k.shape[1]}")
    where = f", crop rows {r.crop[0]}:{r.crop[1]} cols {r.crop[2]}:{r.crop[3]}" if r.crop else ""
    fig.suptitle(f"{name} {h}x{w}, {boundary} boundary{where}", fontsize=10)
    return fig


@dataclass(frozen=True)
class LearnedFilters:
    layer: str
    weights: np.ndarray  # (out, in, kh, kw)
    run_name: str


def learned_filters(run, *, layer: str | None = None, which: str = "best") -> LearnedFilters:
    """The weights of ``layer`` (default: the first conv layer) of a run or model."""
    from cnnlab.run import as_run as load_run
    from cnnlab.viz.features import feature_layers

    r = load_run(run, which)
    convs = [(n, m) for n, m in feature_layers(r.model) if "Conv" in type(m).__name__]
    if not convs:
        raise CnnlabError(f"model {r.name!r} has no conv layer: no learned kernels to draw")
    by_name = dict(convs)
    name = layer or convs[0][0]
    if name not in by_name:
        raise CnnlabError(f"conv layer {name!r} not found; conv layers: {', '.join(by_name)}")
    weights = by_name[name].weight.detach().cpu().numpy().astype(np.float64)
    return LearnedFilters(name, weights, r.name)


def plot_learned_filters(
    run, *, layer: str | None = None, which: str = "best", max_filters: int = 64
) -> Figure:
    """Every kernel of a conv layer on one shared diverging scale (red +, blue -, white 0).

    Single-channel layers draw one panel per filter; RGB inputs draw each filter in colour;
    other layers draw a filters x input-channels grid (the first 8 x 8).
    """
    lf = learned_filters(run, layer=layer, which=which)
    out_c, in_c, kh, kw = lf.weights.shape
    lo, hi = symmetric_limits(lf.weights)
    if in_c == 1 or in_c == 3:
        n = min(out_c, max_filters)
        rows, cols = grid_shape(n)
        fig = new_figure(1.1 * cols + 1.0, 1.1 * rows + 0.7)
        for k, ax in enumerate(panel_grid(fig, n)):
            wk = lf.weights[k]
            if in_c == 3:  # each filter stretched to [0, 1] so its colours show
                rgb = np.moveaxis(wk, 0, -1)
                span = rgb.max() - rgb.min()
                im = show(ax, (rgb - rgb.min()) / (span if span > 0 else 1))
            else:
                im = show(ax, wk[0], cmap=DIVERGING, vmin=lo, vmax=hi)
            ax.set_title(f"{k}", fontsize=7)
    else:
        rows, cols = min(out_c, 8), min(in_c, 8)
        lo, hi = symmetric_limits(lf.weights[:rows, :cols])  # scale of what is drawn
        shown_all = rows == out_c and cols == in_c
        fig = new_figure(0.8 * cols + 1.6, 0.8 * rows + 0.9)
        axes = fig.subplots(rows, cols, squeeze=False)
        for (o, i), ax in np.ndenumerate(axes):
            im = show(ax, lf.weights[o, i], cmap=DIVERGING, vmin=lo, vmax=hi)
            if i == 0:
                ax.set_ylabel(f"{o}", fontsize=6)
        fig.supxlabel("input channel", fontsize=8)
        fig.supylabel("filter", fontsize=8)
    if in_c != 3:
        fig.colorbar(im, ax=list(fig.axes), shrink=0.8)  # every grid cell, used or not
    if in_c in (1, 3):
        shown_all = out_c <= max_filters
    shown = "" if shown_all else " (first ones)"
    fig.suptitle(f"{lf.run_name}: {lf.layer} kernels {out_c}x{in_c}x{kh}x{kw}{shown}", fontsize=10)
    return fig
