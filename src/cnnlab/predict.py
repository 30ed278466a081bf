"""Preparing a user's own images: preprocessing that makes a photo look like the training data,
and the :class:`Prediction` a run returns (``cnnlab.run.Run.predict``).

>>> run = cnnlab.load("runs/tutorial_cnn-mnist")  # doctest: +SKIP
>>> run.predict("my_digit.png")  # doctest: +SKIP
Prediction('7', probability=0.998)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cnnlab.errors import ImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm")
STYLES = ("mnist", "fashion", "plain")


# ---------------------------------------------------------------- preprocessing (NumPy + Pillow)


def _resize(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float (H, W) plane with Pillow (antialiased when shrinking)."""
    if plane.shape == (height, width):
        return plane.astype(np.float32)
    img = Image.fromarray(plane.astype(np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def ink_on_black(gray: np.ndarray) -> np.ndarray:
    """White ink on black: invert when the background (the border's median) is light."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink = 1.0 - gray if background > 0.5 else gray
    background = min(background, 1.0 - background)
    top = float(ink.max())
    if top - background < 1e-6:  # a blank picture: nothing to stretch
        return np.zeros_like(ink)
    return np.clip((ink - background) / (top - background), 0.0, 1.0)


def centre_of_mass(plane: np.ndarray) -> tuple[float, float]:
    total = float(plane.sum())
    if total <= 0:
        return (plane.shape[0] - 1) / 2, (plane.shape[1] - 1) / 2
    rows, cols = np.indices(plane.shape)
    return float((rows * plane).sum() / total), float((cols * plane).sum() / total)


def mnist_style(gray: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """MNIST's own recipe: crop the ink, longer side to ``box`` px, centre of mass in the middle."""
    ink = ink_on_black(gray)
    out = np.zeros((size, size), np.float32)
    ys, xs = np.nonzero(ink > 0.15)
    if len(ys) == 0:
        return out
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    small = np.clip(_resize(crop, max(1, round(h * scale)), max(1, round(w * scale))), 0, 1)
    cy, cx = centre_of_mass(small)
    # MNIST puts the centre of mass at pixel (14, 14) of 28x28 (measured: 13.99, 14.01)
    top = int(np.clip(round(size / 2 - cy), 0, size - small.shape[0]))
    left = int(np.clip(round(size / 2 - cx), 0, size - small.shape[1]))
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    return out


def fashion_style(gray: np.ndarray, size: int = 28) -> np.ndarray:
    """Fashion-MNIST look: object light on black, padded to a square, resized."""
    ink = ink_on_black(gray)
    h, w = ink.shape
    side = max(h, w)
    square = np.zeros((side, side), np.float32)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = ink
    return np.clip(_resize(square, size, size), 0.0, 1.0)


def preprocess(image: Image.Image, style: str = "mnist", size: int = 28) -> np.ndarray:
    """A PIL image -> float32 (size, size) in [0, 1], looking like the training images.

    mnist: gray, auto-invert light backgrounds, crop the ink's bounding box, longer side 20 px
    keeping aspect, centre of mass at the centre of size x size. fashion: gray, invert if the
    background is light, pad to square, resize. plain: gray, resize (image-folder models).

    >>> img = Image.new("L", (50, 40), 255); img.paste(0, (20, 5, 26, 35))
    >>> x = preprocess(img); x.shape, float(x.max())
    ((28, 28), 1.0)
    """
    from cnnlab.images import to_gray_array

    if style not in STYLES:
        raise ImageError(f"style={style!r} is not one of {', '.join(STYLES)}")
    gray = to_gray_array(image)
    if style == "mnist":
        return mnist_style(gray, size, box=round(size * 20 / 28))
    if style == "fashion":
        return fashion_style(gray, size)
    return np.clip(_resize(gray, size, size), 0.0, 1.0)


def preprocess_channels(image: Image.Image, style: str, shape: Sequence[int]) -> np.ndarray:
    """float32 (C, H, W) in [0, 1] for a model input of ``shape`` (C, H, W).

    A blank image (one flat colour: nothing drawn) raises BlankImageError instead of a guess.
    """
    from cnnlab.images import BlankImageError, is_blank, to_rgb_array

    if is_blank(to_rgb_array(image)):
        found = "no digit found" if style == "mnist" else "nothing to classify"
        raise BlankImageError(f"{found}: the image is blank")
    c, h, w = (int(s) for s in shape)
    if c == 3:  # colour image-folder models: plain RGB resize, as the folder loader does
        from cnnlab.images import to_rgb_array

        rgb = to_rgb_array(image)
        return np.stack([np.clip(_resize(rgb[:, :, i], h, w), 0, 1) for i in range(3)])
    if h != w:
        from cnnlab.images import to_gray_array

        return np.clip(_resize(to_gray_array(image), h, w), 0, 1)[None]
    return preprocess(image, style, h)[None]


def style_for(dataset: str) -> str:
    """Which preprocessing matches a training set."""
    if dataset in ("mnist", "digits"):
        return "mnist"
    if dataset == "fashion-mnist":
        return "fashion"
    return "plain"


# ---------------------------------------------------------------- predictor


@dataclass(repr=False)
class Prediction:
    """One image's answer: ``class_name`` with its ``probability``; ``probs`` for every class."""

    label: int  # index of the most probable class
    class_name: str
    probability: float  # of that class
    probs: list[float]  # all classes, in class order
    classes: tuple[str, ...] = ()

    def top(self, k: int = 3) -> list[tuple[int, str, float]]:
        """The ``k`` most probable classes as (index, name, probability)."""
        order = np.argsort(-np.asarray(self.probs), kind="stable")[: max(1, k)]
        return [(int(i), self.classes[i], float(self.probs[i])) for i in order]

    def __repr__(self) -> str:
        return f"Prediction({self.class_name!r}, probability={self.probability:.3f})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "class_name": self.class_name,
            "probability": self.probability,
            "probs": self.probs,
        }


def collect_images(specs: Sequence[str | Path]) -> list[Path]:
    """Expand folders (recursively, sorted) into their image files; keep files as given."""
    out: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_EXTENSIONS
                and not p.name.startswith(".")
                and not p.is_dir()  # a folder named x.png is skipped, as training does
            )
            if not found:
                raise ImageError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise ImageError(f"image not found: {path}")
    return out


def write_csv(
    path: str | Path, paths: Sequence[Path], preds: Sequence[Prediction], classes: Sequence[str]
) -> Path:
    """One row per image: path, label, class_name, probability, then one column per class."""
    from cnnlab.fileio import atomic_write_text

    path = Path(path)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["path", "label", "class_name", "probability", *classes])
    for p, pred in zip(paths, preds, strict=True):
        probs = [f"{v:.6f}" for v in pred.probs]
        writer.writerow([str(p), pred.label, pred.class_name, f"{pred.probability:.6f}", *probs])
    # atomically: a full disk must not leave a CSV that looks complete but lacks rows
    atomic_write_text(path, buf.getvalue())
    return path
