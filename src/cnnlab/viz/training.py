"""Training pictures: learning curves, confusion matrix, the images with the highest loss.

Each function returns a ``matplotlib.figure.Figure`` built without pyplot (shown inline by
Jupyter, written with :func:`cnnlab.viz.save_figure`); no backend is switched. A training run
never imports this module (its curves.png comes from :mod:`cnnlab.viz.curves_png`).

>>> fig = plot_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}])
>>> len(fig.axes)
2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from cnnlab.viz._grid import new_figure


def plot_curves(history: Sequence[dict[str, Any]]) -> Figure:
    """Loss and accuracy (train and validation) against epochs, two panels."""
    fig = new_figure(10, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
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
    return fig


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], title: str = "") -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), counts written in cells."""
    confusion = np.asarray(confusion)
    k = len(classes)
    fig = new_figure(1.0 + 0.6 * k, 0.8 + 0.6 * k)
    ax = fig.subplots()
    ax.imshow(np.log1p(confusion), cmap="Blues")
    threshold = np.log1p(confusion).max() / 2 if confusion.size else 0
    for i in range(k):
        for j in range(k):
            value = int(confusion[i, j])
            color = "white" if np.log1p(value) > threshold else "black"
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(k), [str(c)[:10] for c in classes], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c)[:10] for c in classes])
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title or "confusion matrix", fontsize=9)
    return fig


def top_losses(probs: np.ndarray, labels: np.ndarray, k: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` images with the highest cross-entropy ``-log p(true class)``.

    >>> top_losses(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), k=1)[0].tolist()
    [1]
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))
    order = np.argsort(-loss, kind="stable")[: max(0, k)]
    return order, loss[order]


def _display(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    return img[0] if img.ndim == 3 and img.shape[0] == 1 else np.moveaxis(img, 0, -1)


def plot_top_losses(
    images: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    k: int = 9,
) -> Figure:
    """Grid of the ``k`` highest-loss images: "true -> predicted (probability), loss"."""
    idx, loss = top_losses(probs, labels, k)
    cols = min(6, max(1, int(np.ceil(np.sqrt(len(idx))))))  # 9 -> 3x3, 16 -> 4x4
    rows = max(1, int(np.ceil(len(idx) / cols)))
    fig = new_figure(2.2 * cols, 2.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    pred = np.asarray(probs).argmax(1)
    for ax in axes:
        ax.axis("off")
    for ax, i, value in zip(axes, idx, loss, strict=False):
        ax.imshow(_display(images[i]), cmap="gray")
        p = float(probs[i, pred[i]])
        title = f"{classes[labels[i]]} -> {classes[pred[i]]}\n({p:.0%}) loss {value:.2f}"
        ax.set_title(title, fontsize=8)
    if not len(idx):
        axes[0].text(0.5, 0.5, "no images", ha="center", va="center")
    fig.suptitle("highest loss (true -> predicted)")
    return fig


def plot_inputs(
    originals: Sequence[np.ndarray], inputs: Sequence[np.ndarray], titles: Sequence[str]
) -> Figure:
    """Each image as given (left) beside what the network saw (right), titled with the answer."""
    n = max(1, len(inputs))
    fig = new_figure(4.4, 2.2 * n)
    axes = fig.subplots(n, 2, squeeze=False)
    for row, orig, seen, title in zip(axes, originals, inputs, titles, strict=False):
        row[0].imshow(orig, cmap="gray" if np.ndim(orig) == 2 else None)
        row[1].imshow(_display(seen), cmap="gray", vmin=0, vmax=1)
        row[0].set_title("input", fontsize=8)
        row[1].set_title(title, fontsize=8)
        for ax in row:
            ax.axis("off")
    return fig
