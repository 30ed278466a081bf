"""The learning curves a training run leaves in its folder, drawn with Pillow (no matplotlib).

Importing matplotlib costs about a second, as long as training the fast recipe; Pillow draws
the same two panels (loss, accuracy; train and validation against epochs) in milliseconds.
``cnnlab viz curves RUN`` still draws the matplotlib version of a finished run.

>>> draw_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}], "/tmp/c.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.engine.callbacks import Callback
from cnnlab.fileio import atomic_write_bytes

PANEL = (520, 380)  # pixels per panel (width, height)
MARGIN = (70, 20, 30, 50)  # left, right, top, bottom: room for tick labels and titles
COLORS = {"train": (31, 119, 180), "validation": (255, 127, 14)}  # matplotlib's first two
# title, y label, history keys (train, validation), legend corner (away from where curves go)
PANELS = (
    ("loss", "cross-entropy", ("train_loss", "val_loss"), "top"),
    ("accuracy", "accuracy", ("train_accuracy", "val_accuracy"), "bottom"),
)


def draw_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write a PNG of loss and accuracy (train and validation) against epochs, two panels."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = PANEL
    image = Image.new("RGB", (2 * width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    for i, (title, ylabel, keys, corner) in enumerate(PANELS):
        series = {
            label: [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
            for label, key in zip(("train", "validation"), keys, strict=True)
        }
        _panel(draw, font, i * width, (title, ylabel, corner), series)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return atomic_write_bytes(path, buf.getvalue(), make_parents=True)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2 or 5 x 10^k).

    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
    """
    import math

    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [k * step for k in range(first, last + 1)]


def _panel(draw: Any, font: Any, x0: int, labels: tuple[str, str, str], series: dict) -> None:
    title, ylabel, corner = labels
    width, height = PANEL
    left, right, top, bottom = MARGIN
    box = (x0 + left, top, x0 + width - right, height - bottom)
    points = [p for pts in series.values() for p in pts]
    xs = [p[0] for p in points] or [0.0, 1.0]
    ys = [p[1] for p in points] or [0.0, 1.0]
    xlo, xhi = _padded(min(xs), max(xs))
    ylo, yhi = _padded(min(ys), max(ys))

    def at(x: float, y: float) -> tuple[float, float]:
        px = box[0] + (x - xlo) / (xhi - xlo) * (box[2] - box[0])
        py = box[3] - (y - ylo) / (yhi - ylo) * (box[3] - box[1])
        return px, py

    grid, ink = (225, 225, 225), (40, 40, 40)
    for y in nice_ticks(ylo, yhi):
        py = at(xlo, y)[1]
        draw.line((box[0], py, box[2], py), fill=grid)
        draw.text((box[0] - 6, py), f"{y:.3g}", fill=ink, font=font, anchor="rm")
    for x in nice_ticks(xlo, xhi):
        px = at(x, ylo)[0]
        draw.line((px, box[1], px, box[3]), fill=grid)
        draw.text((px, box[3] + 6), f"{x:g}", fill=ink, font=font, anchor="mt")
    draw.rectangle(box, outline=ink)
    draw.text(((box[0] + box[2]) / 2, 4), title, fill=ink, font=font, anchor="mt")
    draw.text(((box[0] + box[2]) / 2, height - 6), "epoch", fill=ink, font=font, anchor="mb")
    draw.text((x0 + 4, top - 16), ylabel, fill=ink, font=font)
    shown = [label for label, pts in series.items() if pts]
    for label in shown:
        color = COLORS[label]
        xy = [at(x, y) for x, y in series[label]]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        for px, py in xy:
            draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=color)
    legend_y = box[1] + 14 if corner == "top" else box[3] - 18 * len(shown) - 4
    if shown:
        frame = (box[2] - 118, legend_y - 10, box[2] - 8, legend_y + 18 * len(shown) - 8)
        draw.rectangle(frame, fill="white", outline=grid)
    for label in shown:
        color = COLORS[label]
        draw.line((box[2] - 110, legend_y, box[2] - 90, legend_y), fill=color, width=2)
        draw.text((box[2] - 84, legend_y), label, fill=ink, font=font, anchor="lm")
        legend_y += 18


def _padded(low: float, high: float) -> tuple[float, float]:
    """The data range plus 5% each side (a unit range around a single value)."""
    if high - low < 1e-12:
        return low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    return low - pad, high + pad


class CurvesCallback(Callback):
    """Draws ``curves.png`` in the run folder at the end of training (main process only).

    Drawn with Pillow (:mod:`cnnlab.viz.curves_png`), so a training run never imports
    matplotlib.
    """

    def __init__(self, filename: str = "curves.png"):
        self.filename = filename

    def on_train_end(self, state: Any) -> None:
        if state.dist.is_main and state.history:
            draw_curves(state.history, state.run_dir / self.filename)
