"""Translation invariance (notebook 001): the class probability as the image is shifted.

The image is moved by every ``(dy, dx)`` in ``-k..k`` (pixels shifted in are background, 0),
all shifted copies go through the model in one batch, and the probability of the image's class
is drawn as a heat map. Conv + pooling models keep a broad bright area; an MLP baseline
(``vs``), which sees each pixel position as a different input, fades quickly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.run import Run
from cnnlab.run import as_run as load_run
from cnnlab.viz._grid import GRAY, POSITIVE, new_figure, show
from cnnlab.viz.model_input import ModelInput, load_input


@dataclass(frozen=True)
class ShiftMap:
    run: Run
    shifts: np.ndarray  # (2k+1,) pixel shifts, -k..k
    probs: np.ndarray  # (2k+1, 2k+1) probability of `target`; rows dy, columns dx
    target: int


@dataclass(frozen=True)
class Invariance:
    image: ModelInput
    maps: list[ShiftMap]  # the run, then the comparison run if any


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift the last two axes by ``(dy, dx)`` pixels (down, right), filling with zeros.

    >>> shift_image(np.arange(4.0).reshape(2, 2), 0, 1).tolist()
    [[0.0, 0.0], [0.0, 2.0]]
    """
    out = np.zeros_like(image)
    h, w = image.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    dst = (..., slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0)))
    src = (..., slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0)))
    out[dst] = image[src]
    return out


def _probabilities(run: Run, chw: np.ndarray, shifts: np.ndarray, target: int | None):
    import torch

    batch = np.stack([shift_image(chw, dy, dx) for dy in shifts for dx in shifts])
    x = torch.from_numpy(batch.astype(np.float32))
    if run.normalizer is not None:
        x = run.normalizer(x)
    with torch.no_grad():
        probs = run.model(x).softmax(-1).numpy().astype(np.float64)
    n = len(shifts)
    centre = (n * n) // 2  # the unshifted copy
    t = int(np.argmax(probs[centre])) if target is None else target
    return probs[:, t].reshape(n, n), t


def shift_probabilities(
    run, image, *, max_shift: int = 6, vs=None, which: str = "best", data_dir=None
) -> Invariance:
    """Probability of the image's class (its label if known, else the prediction) per shift."""
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or not 0 <= max_shift <= 27:
        raise CnnlabError(f"max_shift={max_shift!r} must be an integer in 0..27")
    r = load_run(run, which)
    inp = load_input(image, r, data_dir)
    c, h, w = r.input_shape
    chw = inp.display[None] if inp.display.ndim == 2 else np.moveaxis(inp.display, -1, 0)
    shifts = np.arange(-max_shift, max_shift + 1)
    probs, target = _probabilities(r, chw, shifts, inp.label)
    maps = [ShiftMap(r, shifts, probs, target)]
    if vs is not None:
        other = load_run(vs, which)
        if other.input_shape != r.input_shape:
            raise CnnlabError(
                f"--vs run takes {other.input_shape} inputs, the first run {r.input_shape}"
            )
        if tuple(other.classes) != tuple(r.classes):
            raise CnnlabError(f"--vs run has other classes ({', '.join(other.classes[:4])}...)")
        p2, _ = _probabilities(other, chw, shifts, target)
        maps.append(ShiftMap(other, shifts, p2, target))
    return Invariance(inp, maps)


def plot_invariance(
    run, image, *, max_shift: int = 6, vs=None, which: str = "best", data_dir=None
) -> Figure:
    """The image, one heat map per run (rows: dy, columns: dx), and the dy=0 / dx=0 profiles."""
    inv = shift_probabilities(
        run, image, max_shift=max_shift, vs=vs, which=which, data_dir=data_dir
    )
    n_maps = len(inv.maps)
    fig = new_figure(3.3 * (n_maps + 2) + 0.6, 3.8)
    axes = fig.subplots(1, n_maps + 2, width_ratios=[0.8] + [1.0] * n_maps + [1.2])
    first = inv.maps[0]
    cls = first.run.classes[first.target]
    show(
        axes[0],
        inv.image.display,
        cmap=GRAY,
        vmin=0,
        vmax=1,
        title=f"{inv.image.name}\nclass {cls}",
    )
    k = int(first.shifts[-1])
    extent = (-k - 0.5, k + 0.5, k + 0.5, -k - 0.5)
    for ax, m in zip(axes[1 : 1 + n_maps], inv.maps, strict=True):
        im = ax.imshow(m.probs, cmap=POSITIVE, vmin=0, vmax=1, extent=extent)
        mean = float(m.probs.mean())
        ax.set_title(f"{m.run.name}: P({cls})\nmean over shifts {mean:.2f}", fontsize=9)
        ax.set_xlabel("shift dx (pixels)", fontsize=8)
        ax.set_ylabel("shift dy (pixels)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=list(axes[1 : 1 + n_maps]), shrink=0.8, label="probability")
    ax = axes[-1]
    for i, m in enumerate(inv.maps):  # one colour per run; solid: shift in x, dashed: in y
        centre = len(m.shifts) // 2
        ax.plot(
            m.shifts,
            m.probs[centre, :],
            "-",
            color=f"C{i}",
            marker="o",
            ms=3,
            label=f"{m.run.name}, dx",
        )
        ax.plot(
            m.shifts,
            m.probs[:, centre],
            "--",
            color=f"C{i}",
            marker="s",
            ms=3,
            label=f"{m.run.name}, dy",
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("shift (pixels), the other axis 0", fontsize=8)
    ax.set_title(f"P({cls}) along one axis", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle("translation invariance: the image shifted by -k..k pixels", fontsize=10)
    return fig
