"""A grid of dataset images with their class names (the first picture of every notebook)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.viz._grid import GRAY, grid_shape, new_figure, panel_grid, show, to_display


@dataclass(frozen=True)
class SampleGrid:
    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray  # (N,)
    indices: np.ndarray  # (N,) positions in the split
    classes: tuple[str, ...]
    name: str


def sample_images(
    dataset: str = "mnist",
    *,
    count: int = 32,
    split: str = "train",
    data_dir=None,
    seed: int = 0,
    image_size: int = 28,
    color_mode: str = "grayscale",
) -> SampleGrid:
    """``count`` random images of a dataset split (same ``seed``, same images); an image
    folder is read at ``image_size`` in ``color_mode`` (``grayscale`` or ``rgb``), as fit does.

    >>> g = sample_images("digits", count=4)
    >>> g.images.shape
    (4, 1, 28, 28)
    """
    from cnnlab.config import COLOR_CHANNELS
    from cnnlab.engine.data_setup import load_split

    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 256:
        raise CnnlabError(f"count={count!r} must be an integer in 1..256")
    if color_mode not in COLOR_CHANNELS:
        raise CnnlabError(f"color_mode={color_mode!r} is not one of {', '.join(COLOR_CHANNELS)}")
    ds = load_split(
        dataset, split, data_dir, image_size=image_size, channels=COLOR_CHANNELS[color_mode]
    )
    n = len(ds)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(count, n), replace=False))
    images = ds.images[idx].numpy()
    labels = ds.labels[idx].numpy()
    return SampleGrid(images, labels, idx, tuple(ds.classes), f"{ds.name} {split}")


def plot_samples(
    dataset: str = "mnist",
    *,
    count: int = 32,
    split: str = "train",
    data_dir=None,
    seed: int = 0,
    image_size: int = 28,
    color_mode: str = "grayscale",
) -> Figure:
    """The images in rows of 8, each titled with its class name."""
    g = sample_images(
        dataset, count=count, split=split, data_dir=data_dir, seed=seed,
        image_size=image_size, color_mode=color_mode,
    )  # fmt: skip
    n = len(g.labels)
    rows, cols = grid_shape(n)
    fig = new_figure(1.25 * cols + 0.2, 1.35 * rows + 0.5)
    for k, ax in enumerate(panel_grid(fig, n)):
        title = f"{g.classes[g.labels[k]][:12]}"
        show(ax, to_display(g.images[k] / 255.0), cmap=GRAY, vmin=0, vmax=1, title=title)
    fig.suptitle(f"{g.name}: {n} random images (seed {seed})", fontsize=10)
    return fig
