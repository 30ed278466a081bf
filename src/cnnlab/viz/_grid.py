"""Shared plumbing for every picture: figures, colour maps, image panels, atomic PNG saving.

Pictures are built on ``matplotlib.figure.Figure`` directly (never ``pyplot``), so nothing is
kept in a global figure registry and the Agg canvas is used whatever the user's backend is.
Figures use constrained layout instead of ``bbox_inches="tight"``, which keeps labels inside
the canvas *and* keeps the PNG size exactly ``figsize * dpi`` (tests rely on that).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_write_bytes

DPI = 100
GRAY = "gray"  # images and non-negative single-channel data
DIVERGING = "RdBu_r"  # signed data (kernels, gradients, pre-activations), centred on zero
POSITIVE = "viridis"  # non-negative activations and probabilities
HEAT = "inferno"  # overlays (Grad-CAM) on a gray image


class NotebookFigure(Figure):
    """A ``Figure`` that Jupyter shows as a PNG by itself (``_repr_png_``), even when pyplot
    and its inline backend were never loaded; where they were, their own display wins."""

    def _repr_png_(self) -> bytes:
        return figure_png_bytes(self)


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of ``width`` x ``height`` inches with an Agg canvas."""
    fig = NotebookFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# PNGs above this are re-encoded with a 256-colour palette (photos in a grid of panels can
# otherwise reach half a megabyte; the palette version looks the same at this size).
MAX_PNG_BYTES = 200_000


def figure_png_bytes(fig: Figure, *, dpi: int = DPI, max_bytes: int = MAX_PNG_BYTES) -> bytes:
    """The PNG encoding of ``fig`` (also used by the HTML report), kept under ``max_bytes``
    when a 256-colour palette allows it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = buf.getvalue()
    if len(data) <= max_bytes:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        small = img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + fsync + rename); returns the path.

    >>> fig = new_figure(2, 1)
    >>> save_figure(fig, "out.png")  # doctest: +SKIP
    PosixPath('out.png')
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise CnnlabError(f"output must be a .png file, got {str(path)!r}")
    return atomic_write_bytes(path, figure_png_bytes(fig, dpi=dpi))


def symmetric_limits(data: np.ndarray) -> tuple[float, float]:
    """``(-m, m)`` with ``m = max |data|`` so zero sits at the centre of a diverging map."""
    m = float(np.max(np.abs(data))) if np.size(data) else 0.0
    m = m if m > 0 and np.isfinite(m) else 1.0
    return -m, m


def cmap_for(data: np.ndarray) -> tuple[str, float | None, float | None]:
    """Colour map and limits for one panel: diverging around 0 if signed, else sequential."""
    if np.size(data) and float(np.min(data)) < 0:
        lo, hi = symmetric_limits(data)
        return DIVERGING, lo, hi
    return POSITIVE, None, None


def show(
    ax: Axes,
    data: np.ndarray,
    *,
    title: str | None = None,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    fontsize: float = 9,
):
    """Draw one image panel without ticks; RGB ``(H, W, 3)`` data is drawn as colour."""
    data = np.asarray(data)
    if data.ndim == 3:
        im = ax.imshow(np.clip(data, 0, 1), interpolation="nearest")
    else:
        if cmap is None:
            cmap, vmin, vmax = cmap_for(data)
        im = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)
    return im


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    """Rows and columns for ``n`` panels filled row by row, at most ``max_cols`` wide."""
    if n <= 0:
        raise CnnlabError(f"nothing to draw: {n} panels")
    cols = min(max_cols, n)
    return -(-n // cols), cols


def panel_grid(fig: Figure, n: int, max_cols: int = 8) -> list[Axes]:
    """``n`` axes on a grid inside ``fig``; unused cells are switched off."""
    rows, cols = grid_shape(n, max_cols)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    return list(axes[:n])


def to_display(image: np.ndarray) -> np.ndarray:
    """A ``(C, H, W)``, ``(H, W, C)`` or ``(H, W)`` array as ``(H, W)`` or ``(H, W, 3)``."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return a


def parse_ints(text: str, what: str, count: int | None = None) -> tuple[int, ...]:
    """``"3,4"`` -> ``(3, 4)``; a one-line ``CnnlabError`` naming ``what`` otherwise."""
    try:
        values = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise CnnlabError(f"{what} must be comma-separated integers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise CnnlabError(f"{what} needs {count} integers, got {text!r}")
    return values


def as_list(values: Sequence[str] | str) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (blank entries dropped)."""
    if isinstance(values, str):
        values = values.split(",")
    return [v.strip() for v in values if v.strip()]
