"""Notebook 000's activation cheat sheet: ReLU, sigmoid, tanh curves and a softmax example."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from cnnlab.viz._grid import new_figure

# Notebook 000's own softmax example (section 5.2).
NOTEBOOK_LOGITS = (1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))  # shifted: same result, no overflow for large logits
    return e / e.sum()


@dataclass(frozen=True)
class ActivationCurves:
    """The sampled curves and the softmax example that the picture draws."""

    x: np.ndarray
    curves: dict[str, np.ndarray]  # name -> f(x)
    logits: np.ndarray
    softmax: np.ndarray


def activation_curves(
    x_range: tuple[float, float] = (-5.0, 5.0),
    logits: tuple[float, ...] = NOTEBOOK_LOGITS,
    points: int = 401,
) -> ActivationCurves:
    """Sample ReLU, sigmoid and tanh on ``x_range`` and the softmax of ``logits``.

    >>> c = activation_curves()
    >>> float(c.curves["ReLU"][-1]), round(float(c.softmax.sum()), 6)
    (5.0, 1.0)
    """
    x = np.linspace(*x_range, points)
    curves = {
        "ReLU": np.maximum(x, 0.0),
        "sigmoid": 1.0 / (1.0 + np.exp(-x)),
        "tanh": np.tanh(x),
    }
    z = np.asarray(logits, dtype=np.float64)
    return ActivationCurves(x=x, curves=curves, logits=z, softmax=_softmax(z))


_FORMULAS = {
    "ReLU": r"$\max(0, x)$",
    "sigmoid": r"$1 / (1 + e^{-x})$",
    "tanh": r"$\tanh(x)$",
}


def plot_activations(curves: ActivationCurves | None = None) -> Figure:
    """Four panels: ReLU, sigmoid, tanh, and softmax of notebook 000's logits (bars).

    >>> fig = plot_activations()
    >>> len(fig.axes)
    4
    """
    c = curves or activation_curves()
    fig = new_figure(12, 3.2)
    axes = fig.subplots(1, 4)
    for ax, (name, y) in zip(axes, c.curves.items(), strict=False):
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.plot(c.x, y, lw=2, color="tab:blue")
        ax.set_title(f"{name}: {_FORMULAS[name]}", fontsize=11)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    ax = axes[3]
    idx = np.arange(len(c.logits))
    width = 0.4
    ax.bar(idx - width / 2, c.logits / c.logits.max(), width, label="z / max(z)", color="0.6")
    ax.bar(idx + width / 2, c.softmax, width, label="softmax(z)", color="tab:orange")
    for i, p in enumerate(c.softmax):
        ax.text(i + width / 2, p + 0.02, f"{p:.2f}", ha="center", fontsize=7)
    ax.set_xticks(idx, [f"{v:g}" for v in c.logits])
    ax.set_xlabel("logit z")
    ax.set_ylim(0, 1.12)
    ax.set_title(r"softmax: $e^{z_j}\,/\,\Sigma_k\, e^{z_k}$", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    return fig
