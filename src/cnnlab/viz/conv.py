"""Notebook 000 sections 2.1-2.2 as pictures: a kernel sliding over a padded input.

The padded input is drawn as a grid of numbers (padding cells shaded), the kernel (rotated by
180 degrees for true convolution, as-is for cross-correlation) is written into the window at
each step, and the output grid carries the resulting numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnlab.errors import CnnlabError
from cnnlab.ops.shapes import resolve_padding
from cnnlab.viz._grid import new_figure

# Notebook 000, example 2 (section 2.2): X is 4x4, W is 3x3.
NOTEBOOK_X = ((1, 3, 2, 4), (5, 6, 1, 3), (1, 2, 0, 2), (3, 4, 3, 2))
NOTEBOOK_W = ((1, 0, 3), (1, 2, 1), (0, 1, 1))
MODES = ("full", "same", "valid")

Padding = str | int | tuple[int, int]


@dataclass(frozen=True)
class ConvSteps:
    """Everything the conv picture draws: the padded input, windows and output numbers."""

    x: np.ndarray  # (n1, n2) input
    w: np.ndarray  # (m1, m2) kernel as given
    kernel: np.ndarray  # the kernel actually slid: rot180(w) for convolution, w for correlation
    padded: np.ndarray  # input with zero padding
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    stride: tuple[int, int]
    positions: tuple[tuple[int, int], ...]  # top-left corner of the window for each output cell
    output: np.ndarray  # (o1, o2)
    label: str  # e.g. "same (p=1)"


def _pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int | np.integer) else tuple(value)
    if len(pair) != 2 or any(int(v) != v for v in pair):
        raise CnnlabError(f"{what} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _pads_1d(n: int, m: int, s: int, mode: Padding, flip: bool) -> tuple[int, int]:
    """(before, after) zeros along one axis: the same rule as ``cnnlab.ops`` (one source)."""
    return resolve_padding(n, m, mode, s, flip=flip)


def _label(padding: Padding, pads: tuple[int, int, int, int]) -> str:
    top, bottom, left, right = pads
    p = f"{top}" if len(set(pads)) == 1 else f"({top},{bottom},{left},{right})"
    return f"{padding} (p={p})" if isinstance(padding, str) else f"p={p}"


def conv_steps(
    x=NOTEBOOK_X,
    w=NOTEBOOK_W,
    padding: Padding = "valid",
    stride: int | tuple[int, int] = 1,
    flip: bool = True,
) -> ConvSteps:
    """Slide ``w`` over ``x`` step by step, as notebook 000's naive ``conv2d`` does.

    Args:
        x: the 2D input.
        w: the 2D kernel.
        padding: ``"full"``, ``"same"``, ``"valid"``, an int or a pair ``(p_rows, p_cols)``.
        stride: an int or a pair.
        flip: True for true convolution (kernel rotated 180 degrees), False for cross-correlation.

    >>> conv_steps(padding="valid").output.tolist()
    [[25.0, 24.0], [28.0, 25.0]]
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    if x.ndim != 2 or w.ndim != 2 or x.size == 0 or w.size == 0:
        raise CnnlabError(f"input and kernel must be non-empty 2D arrays, got {x.shape}, {w.shape}")
    sh, sw = _pair(stride, "stride")
    if sh < 1 or sw < 1:
        raise CnnlabError(f"stride={stride} must be >= 1")
    if isinstance(padding, str):
        if padding not in MODES:
            raise CnnlabError(
                f"padding must be one of {', '.join(MODES)} or an int, got {padding!r}"
            )
        pad_spec: tuple = (padding, padding)
    else:
        pad_spec = _pair(padding, "padding")
        if min(pad_spec) < 0:
            raise CnnlabError(f"padding={padding} must be >= 0")
    top, bottom = _pads_1d(x.shape[0], w.shape[0], sh, pad_spec[0], flip)
    left, right = _pads_1d(x.shape[1], w.shape[1], sw, pad_spec[1], flip)
    padded = np.pad(x, ((top, bottom), (left, right)))
    m1, m2 = w.shape
    if padded.shape[0] < m1 or padded.shape[1] < m2:
        raise CnnlabError(
            f"kernel {m1}x{m2} is larger than the padded input "
            f"{padded.shape[0]}x{padded.shape[1]} (padding={padding})"
        )
    kernel = w[::-1, ::-1] if flip else w
    rows = range(0, padded.shape[0] - m1 + 1, sh)
    cols = range(0, padded.shape[1] - m2 + 1, sw)
    positions = tuple((i, j) for i in rows for j in cols)
    values = [float(np.sum(padded[i : i + m1, j : j + m2] * kernel)) for i, j in positions]
    pads = (top, bottom, left, right)
    return ConvSteps(
        x=x,
        w=w,
        kernel=kernel,
        padded=padded,
        pads=pads,
        stride=(sh, sw),
        positions=positions,
        output=np.array(values).reshape(len(rows), len(cols)),
        label=_label(padding, pads),
    )


def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def _number_grid(
    ax: Axes,
    values: np.ndarray,
    *,
    pad_mask: np.ndarray | None = None,
    fontsize: float = 10,
    title: str | None = None,
    frame: tuple[int, int] | None = None,
) -> None:
    """Draw ``values`` as a table of cells with their numbers; padding cells shaded.

    ``frame`` (rows, cols) fixes the axes extent in cells, so grids of different sizes drawn
    side by side share one cell size; the grid sits at the top centre of the frame.
    """
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            is_pad = pad_mask is not None and pad_mask[r, c]
            face = "0.88" if is_pad else "white"
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=face, edgecolor="0.55", lw=0.8))
            color = "0.5" if is_pad else "black"
            ax.text(
                c + 0.5,
                r + 0.5,
                _fmt(values[r, c]),
                ha="center",
                va="center",
                fontsize=fontsize,
                color=color,
            )
    frame_rows, frame_cols = frame or (rows, cols)
    dx = (frame_cols - cols) / 2
    ax.set_xlim(-dx - 0.05, cols + dx + 0.05)
    ax.set_ylim(frame_rows + 0.05, -0.05)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=fontsize + 1)


def _window(ax: Axes, steps: ConvSteps, k: int, color: str, *, numbers: bool, fontsize: float):
    """Outline step ``k``'s window; optionally write the slid kernel's values into its cells."""
    i, j = steps.positions[k]
    m1, m2 = steps.kernel.shape
    ax.add_patch(Rectangle((j, i), m2, m1, fill=False, edgecolor=color, lw=2.5))
    if numbers:
        for r in range(m1):
            for c in range(m2):
                ax.text(
                    j + c + 0.93,
                    i + r + 0.93,
                    _fmt(steps.kernel[r, c]),
                    ha="right",
                    va="bottom",
                    fontsize=fontsize,
                    color=color,
                )


def _pad_mask(steps: ConvSteps) -> np.ndarray:
    top, _, left, _ = steps.pads
    mask = np.ones(steps.padded.shape, dtype=bool)
    mask[top : top + steps.x.shape[0], left : left + steps.x.shape[1]] = False
    return mask


def _out_cell(ax: Axes, steps: ConvSteps, k: int, color: str) -> None:
    cols = steps.output.shape[1]
    ax.add_patch(Rectangle((k % cols, k // cols), 1, 1, fill=False, edgecolor=color, lw=2.5))


def _dot_text(steps: ConvSteps, k: int) -> str:
    i, j = steps.positions[k]
    m1, m2 = steps.kernel.shape
    patch = steps.padded[i : i + m1, j : j + m2].ravel()
    terms = [f"{_fmt(a)}·{_fmt(b)}" for a, b in zip(patch, steps.kernel.ravel(), strict=True)]
    nonzero = [t for t, a, b in zip(terms, patch, steps.kernel.ravel(), strict=True) if a and b]
    shown = " + ".join(nonzero[:4]) + (" + ..." if len(nonzero) > 4 else "") or "0"
    o2 = steps.output.shape[1]
    return f"Y[{k // o2},{k % o2}] = {shown}\n= {_fmt(steps.output.flat[k])}"


def plot_conv_modes(
    x=NOTEBOOK_X,
    w=NOTEBOOK_W,
    stride: int | tuple[int, int] = 1,
    flip: bool = True,
    modes: tuple[Padding, ...] = MODES,
) -> Figure:
    """The padding modes side by side: padded input with the first and last window, output.

    The red window is the first step (the slid kernel's values in red in its cells) and the
    blue dashed one the last; the output cells they produce are outlined in the same colours.

    >>> fig = plot_conv_modes()
    >>> [conv_steps(NOTEBOOK_X, NOTEBOOK_W, padding=m).output.shape for m in MODES]
    [(6, 6), (4, 4), (2, 2)]
    """
    all_steps = [conv_steps(x, w, padding=m, stride=stride, flip=flip) for m in modes]
    in_frame = tuple(max(s.padded.shape[a] for s in all_steps) for a in (0, 1))
    out_frame = tuple(max(s.output.shape[a] for s in all_steps) for a in (0, 1))
    cell = min(0.4, 3.2 / max(in_frame))  # inches per cell
    fontsize = max(5.0, min(10.0, 25 * cell))
    width = max(len(modes) * (in_frame[1] + 1) * cell, 6)
    height = (in_frame[0] + out_frame[0] + 1.2) * cell + 1.4
    fig = new_figure(width, height)
    grid = fig.add_gridspec(2, len(modes), height_ratios=[in_frame[0], out_frame[0] + 1.2])
    op = "rot180(W)" if flip else "W (no flip: cross-correlation)"
    for col, steps in enumerate(all_steps):
        top = fig.add_subplot(grid[0, col])
        _number_grid(
            top,
            steps.padded,
            pad_mask=_pad_mask(steps),
            fontsize=fontsize,
            title=f"{steps.label}, stride {steps.stride[0]}",
            frame=in_frame,
        )
        last = len(steps.positions) - 1
        _window(top, steps, last, "tab:blue", numbers=False, fontsize=fontsize * 0.7)
        _window(top, steps, 0, "tab:red", numbers=True, fontsize=fontsize * 0.75)
        bottom = fig.add_subplot(grid[1, col])
        o1, o2 = steps.output.shape
        _number_grid(
            bottom,
            steps.output,
            fontsize=fontsize,
            title=f"Y: {o1}x{o2}",
            frame=(out_frame[0] + 1, out_frame[1]),
        )
        _out_cell(bottom, steps, last, "tab:blue")
        _out_cell(bottom, steps, 0, "tab:red")
        bottom.text(
            o2 / 2, o1 + 0.25, _dot_text(steps, 0), ha="center", va="top", fontsize=fontsize * 0.8
        )
    kind = "convolution" if flip else "cross-correlation"
    fig.suptitle(
        f"2D {kind}: padded X (gray = zero padding) with {op} in red, first and last step",
        fontsize=10,
    )
    return fig


def plot_conv_steps(
    x=NOTEBOOK_X,
    w=NOTEBOOK_W,
    padding: Padding = "valid",
    stride: int | tuple[int, int] = 1,
    flip: bool = True,
    max_steps: int = 36,
) -> Figure:
    """One mode, every step: X, W and the slid kernel, then one panel per output cell, then Y.

    >>> fig = plot_conv_steps(padding="valid")
    >>> [ax.get_title() for ax in fig.axes][:4]
    ['X', 'W', 'rot180(W), slid', 'Y[0,0] = 25']
    """
    steps = conv_steps(x, w, padding=padding, stride=stride, flip=flip)
    n = len(steps.positions)
    if n > max_steps:
        raise CnnlabError(f"{n} steps to draw (limit {max_steps}): use a smaller input or stride")
    cols = min(6, max(3, steps.output.shape[1]))
    n_panels = 3 + n + 1
    rows = -(-n_panels // cols)
    size = max(steps.padded.shape)
    fontsize = max(5.0, min(10.0, 28 / size * 1.6))
    fig = new_figure(2.1 * cols, 2.3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    mask = _pad_mask(steps)
    frame = steps.padded.shape
    _number_grid(axes[0], steps.x, fontsize=fontsize, title="X", frame=frame)
    _number_grid(axes[1], steps.w, fontsize=fontsize, title="W", frame=frame)
    flipped = "rot180(W), slid" if flip else "W, slid (no flip)"
    _number_grid(axes[2], steps.kernel, fontsize=fontsize, title=flipped, frame=frame)
    o2 = steps.output.shape[1]
    for k in range(n):
        ax = axes[3 + k]
        _number_grid(ax, steps.padded, pad_mask=mask, fontsize=fontsize * 0.8)
        _window(ax, steps, k, "tab:red", numbers=True, fontsize=fontsize * 0.8)
        ax.set_title(f"Y[{k // o2},{k % o2}] = {_fmt(steps.output.flat[k])}", fontsize=fontsize)
    _number_grid(axes[3 + n], steps.output, fontsize=fontsize, title="Y", frame=frame)
    for ax in axes[n_panels:]:
        ax.set_axis_off()
    kind = "convolution" if flip else "cross-correlation"
    sh, sw = steps.stride
    stride_text = f"{sh}" if sh == sw else f"({sh}, {sw})"
    fig.suptitle(f"2D {kind}, padding {steps.label}, stride {stride_text}", fontsize=11)
    return fig
