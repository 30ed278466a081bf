"""Training pictures: learning curves, confusion matrix, most-confidently-wrong images.

Matplotlib with the Agg backend (no display needed). The engine never imports this module: the
CLI calls these functions, or passes :class:`CurvesCallback` into ``fit``.

>>> plot_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}], "/tmp/c.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.fileio import atomic_write_bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return atomic_write_bytes(path, buf.getvalue(), make_parents=True)


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Loss and accuracy (train and validation) against epochs, two panels."""
    plt = _plt()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    x = [row["epoch"] for row in history]
    for key, ax, label in (
        ("train_loss", ax_loss, "train"),
        ("val_loss", ax_loss, "validation"),
        ("train_accuracy", ax_acc, "train"),
        ("val_accuracy", ax_acc, "validation"),
    ):
        pts = [(e, r[key]) for e, r in zip(x, history, strict=False) if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts, strict=False), marker="o", ms=3, label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    return _save(fig, path)


def plot_confusion(
    confusion: np.ndarray, classes: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Confusion matrix (rows: true class, columns: predicted), counts written in cells."""
    plt = _plt()
    confusion = np.asarray(confusion)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k))
    ax.imshow(np.log1p(confusion), cmap="Blues")
    threshold = np.log1p(confusion).max() / 2 if confusion.size else 0
    for i in range(k):
        for j in range(k):
            value = int(confusion[i, j])
            color = "white" if np.log1p(value) > threshold else "black"
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(k), [str(c)[:10] for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c)[:10] for c in classes])
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    return _save(fig, path)


def worst_errors(
    probs: np.ndarray, labels: np.ndarray, n: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``n`` wrong predictions with the highest confidence, and those confidences."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    conf = probs[wrong, pred[wrong]]
    order = np.argsort(-conf, kind="stable")[:n]
    return wrong[order], conf[order]


def plot_worst_errors(
    images: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    path: str | Path,
    n: int = 16,
) -> Path:
    """Grid of the most confidently wrong images: "true -> predicted (confidence)"."""
    plt = _plt()
    idx, conf = worst_errors(probs, labels, n)
    cols = 4 if len(idx) > 4 else max(1, len(idx))
    rows = max(1, int(np.ceil(len(idx) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    pred = np.asarray(probs).argmax(1)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i, c in zip(axes.ravel(), idx, conf, strict=False):
        img = np.asarray(images[i])
        img = img[0] if img.ndim == 3 and img.shape[0] == 1 else np.moveaxis(img, 0, -1)
        ax.imshow(img, cmap="gray")
        ax.set_title(f"{classes[labels[i]]} -> {classes[pred[i]]}\n({c:.0%})", fontsize=8)
    if not len(idx):
        axes[0, 0].text(0.5, 0.5, "no errors", ha="center", va="center")
    fig.suptitle("most confidently wrong (true -> predicted)")
    return _save(fig, path)


class CurvesCallback:
    """A fit() callback (duck-typed) that draws ``curves.png`` in the run folder at the end.

    Drawn with Pillow (:mod:`cnnlab.viz.curves_png`), so a training run never imports
    matplotlib.
    """

    def __init__(self, filename: str = "curves.png"):
        self.filename = filename

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return lambda *args, **kw: None
        if name in ("state_dict",):
            return dict
        if name == "load_state_dict":
            return lambda state: None
        raise AttributeError(name)

    def on_train_end(self, state: Any) -> None:
        from cnnlab.viz.curves_png import draw_curves

        if state.dist.is_main and state.history:
            draw_curves(state.history, state.run_dir / self.filename)


def plot_inputs(
    originals: Sequence[np.ndarray],
    inputs: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
) -> Path:
    """Each image as given (left) beside what the network saw (right), titled with the answer."""
    plt = _plt()
    n = max(1, len(inputs))
    fig, axes = plt.subplots(n, 2, figsize=(4.4, 2.2 * n), squeeze=False)
    for row, orig, seen, title in zip(axes, originals, inputs, titles, strict=False):
        seen = np.asarray(seen)
        seen = seen[0] if seen.shape[0] == 1 else np.moveaxis(seen, 0, -1)
        row[0].imshow(orig, cmap="gray" if np.ndim(orig) == 2 else None)
        row[1].imshow(seen, cmap="gray", vmin=0, vmax=1)
        row[0].set_title("input", fontsize=8)
        row[1].set_title(title, fontsize=8)
        for ax in row:
            ax.axis("off")
    return _save(fig, path)
