"""Notebook 004's pooling pictures: max vs average pooling and depth-wise pooling of a photo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.viz._grid import GRAY, new_figure, parse_ints, show

# Notebook 004 crops (rows, cols) of the scikit-learn sample photos: crop(images, 150, 220,
# 130, 250) there means images[130:250, 150:220].
NOTEBOOK_CROPS = {"china": (130, 250, 150, 220), "flower": (250, 370, 200, 270)}

Crop = tuple[int, int, int, int]


@dataclass(frozen=True)
class PoolResult:
    """The cropped photo and its pooled versions (all float in [0, 1])."""

    original: np.ndarray  # (H, W, 3) or (H, W)
    max_pool: np.ndarray  # (H//s, W//s[, 3]) max over each s x s window, per channel
    avg_pool: np.ndarray  # same shape, mean over each window
    depth_max: np.ndarray  # (H, W) max over the colour channels (depth-wise pooling)
    depth_avg: np.ndarray  # (H, W) mean over the colour channels
    size: int
    crop: Crop | None


def load_photo(image, crop: Crop | str | None = None) -> tuple[np.ndarray, Crop | None]:
    """A photo as float [0, 1] and the crop applied (notebook 004's crop for china/flower).

    ``crop`` is ``(top, bottom, left, right)``, ``"top,bottom,left,right"``, ``"none"`` or None
    (= the notebook's crop for china/flower, the whole image otherwise).
    """
    from cnnlab.images import load_named_image

    arr = image if isinstance(image, np.ndarray) else load_named_image(image)
    arr = np.asarray(arr, dtype=np.float64)
    if isinstance(crop, str):
        crop = None if crop.lower() in ("none", "full") else parse_ints(crop, "crop", 4)
        if crop is None:
            return arr, None
    elif crop is None:
        crop = NOTEBOOK_CROPS.get(image) if isinstance(image, str) else None
        if crop is None:
            return arr, None
    top, bottom, left, right = crop
    h, w = arr.shape[:2]
    if not (0 <= top < bottom <= h and 0 <= left < right <= w):
        raise CnnlabError(f"crop={crop} is outside the {h}x{w} image (top,bottom,left,right)")
    return arr[top:bottom, left:right], tuple(crop)


def pool_images(image, size: int = 2, crop: Crop | str | None = None) -> PoolResult:
    """Max / average pooling with a ``size`` x ``size`` window and stride, and depth-wise pooling.

    >>> r = pool_images("china")
    >>> r.original.shape, r.max_pool.shape, r.depth_max.shape
    ((120, 70, 3), (60, 35, 3), (120, 70))
    """
    from cnnlab.ops.pool import avg_pool2d, depth_pool, max_pool2d

    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise CnnlabError(f"pool size={size!r} must be an integer >= 1")
    photo, used = load_photo(image, crop)
    if min(photo.shape[:2]) < size:
        raise CnnlabError(f"pool size={size} is larger than the {photo.shape[:2]} image")
    chw = photo[None] if photo.ndim == 2 else np.moveaxis(photo, -1, 0)  # pool each channel
    back = (lambda a: a[0]) if photo.ndim == 2 else (lambda a: np.moveaxis(a, 0, -1))
    channels = chw.shape[0]
    return PoolResult(
        original=photo,
        max_pool=back(max_pool2d(chw, size)),
        avg_pool=back(avg_pool2d(chw, size)),
        depth_max=depth_pool(chw, channels, axis=0)[0],
        depth_avg=depth_pool(chw, channels, axis=0, kind="avg")[0],
        size=size,
        crop=used,
    )


def plot_pooling(image, size: int = 2, crop: Crop | str | None = None) -> Figure:
    """Five panels: the (cropped) photo, max pool, average pool, depth-wise max and mean.

    Every panel is drawn at the same size, so the pooled images show their coarser pixels.
    """
    r = pool_images(image, size=size, crop=crop)
    h, w = r.original.shape[:2]
    panel = 2.4
    fig = new_figure(5 * panel * min(1.4, max(0.6, w / h)) + 0.4, panel + 0.9)
    axes = fig.subplots(1, 5)
    s = r.size
    where = f" crop rows {r.crop[0]}:{r.crop[1]}, cols {r.crop[2]}:{r.crop[3]}" if r.crop else ""
    panels = [
        (r.original, f"input {h}x{w}"),
        (r.max_pool, f"max pool {s}x{s}\n-> {r.max_pool.shape[0]}x{r.max_pool.shape[1]}"),
        (r.avg_pool, f"average pool {s}x{s}\n-> {r.avg_pool.shape[0]}x{r.avg_pool.shape[1]}"),
        (r.depth_max, "depth-wise max\nover channels"),
        (r.depth_avg, "depth-wise mean\nover channels"),
    ]
    for ax, (data, title) in zip(axes, panels, strict=True):
        show(ax, data, title=title, cmap=GRAY, vmin=0, vmax=1)
    fig.suptitle(f"{image if isinstance(image, str) else 'image'}:{where}", fontsize=10)
    return fig
