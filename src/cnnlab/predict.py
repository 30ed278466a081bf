"""Classify a user's own images: preprocessing that makes a photo look like the training data,
and a :class:`Predictor` that runs any model backend (PyTorch checkpoint, safetensors, ONNX...).

Backends are chosen by file type through a small registry, so other formats plug in without
touching this module: ``register_backend(".onnx", OnnxBackend.load)``. A backend maps images in
[0, 1] of shape (N, C, H, W) to logits and knows its classes, input shape and dataset.

>>> predictor = Predictor.load("runs/tutorial_cnn-mnist/version_0")  # doctest: +SKIP
>>> predictor.predict_paths(["my_digit.png"])[0].class_name  # doctest: +SKIP
'7'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from cnnlab.errors import CheckpointError, ImageError

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


# ---------------------------------------------------------------- backends


class Backend(Protocol):
    """What the Predictor needs from a model format."""

    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (C, H, W)
    dataset: str

    def logits(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, C, H, W) images in [0, 1] (not yet normalised) -> (N, classes) logits."""
        ...


class TorchBackend:
    """A cnnlab checkpoint (``.pt``, or ``.safetensors`` carrying cnnlab metadata)."""

    def __init__(self, loaded: Any):
        self.loaded = loaded
        self.model = loaded.model
        self.normalizer = loaded.normalizer
        self.classes = tuple(loaded.classes)
        self.input_shape = tuple(loaded.input_shape)
        self.dataset = loaded.dataset

    @classmethod
    def load(cls, path: Path) -> TorchBackend:
        from cnnlab.engine.checkpoint import load_model

        return cls(load_model(path))

    def logits(self, x: np.ndarray) -> np.ndarray:
        import torch

        from cnnlab.engine.evaluate import infer

        batch = self.normalizer(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return infer(self.model, batch, batch_size=1000).numpy()


# suffix -> loader(path) -> Backend. Export/serve register ".onnx" and manifest formats here.
BACKENDS: dict[str, Callable[[Path], Backend]] = {
    ".pt": TorchBackend.load,
    ".safetensors": TorchBackend.load,
}


def _register_exported_backends() -> None:
    """Add the .onnx / safetensors+manifest loaders of cnnlab.backends (owned by export)."""
    try:
        from cnnlab.backends import register
    except ModuleNotFoundError:  # a trimmed install without the export module
        return
    register()


def register_backend(suffix: str, loader: Callable[[Path], Backend]) -> None:
    """Make ``Predictor.load`` open files ending in ``suffix`` with ``loader``."""
    BACKENDS[suffix.lower()] = loader


# ---------------------------------------------------------------- predictor


@dataclass
class Prediction:
    label: int  # index of the most probable class
    class_name: str
    probability: float  # of that class
    probs: list[float]  # all classes, in class order
    classes: tuple[str, ...] = ()

    def top(self, k: int = 3) -> list[tuple[int, str, float]]:
        """The ``k`` most probable classes as (index, name, probability)."""
        order = np.argsort(-np.asarray(self.probs), kind="stable")[: max(1, k)]
        return [(int(i), self.classes[i], float(self.probs[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "class_name": self.class_name,
            "probability": self.probability,
            "probs": self.probs,
        }


class Predictor:
    """Preprocess images and classify them with one backend."""

    def __init__(self, backend: Backend, style: str | None = None):
        self.backend = backend
        self.style = style or style_for(backend.dataset)

    @classmethod
    def load(cls, path: str | Path, style: str | None = None) -> Predictor:
        """Open a run folder (its best checkpoint) or a model file, by suffix (see BACKENDS)."""
        path = Path(path)
        if path.is_dir():
            from cnnlab.engine.checkpoint import resolve_checkpoint

            path = resolve_checkpoint(path, "best")
        if not path.exists():
            raise CheckpointError(f"no such model file or run folder: {path}")
        from cnnlab.fileio import check_regular_file

        check_regular_file(path, what="model file", error=CheckpointError)  # not a device/pipe
        _register_exported_backends()
        loader = BACKENDS.get(path.suffix.lower())
        if loader is None:
            raise CheckpointError(
                f"cannot load {path}: unknown model file type {path.suffix!r} "
                f"(known: {', '.join(sorted(BACKENDS))})"
            )
        from cnnlab.engine.validate import check_backend

        backend = loader(path)
        check_backend(backend, path)  # one blank image: scores of the right shape, finite
        return cls(backend, style)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.backend.classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.backend.input_shape

    def prepare(self, image: Image.Image) -> np.ndarray:
        """What the network sees: float32 (C, H, W) in [0, 1]."""
        return preprocess_channels(image, self.style, self.input_shape)

    def predict_arrays(self, x: np.ndarray) -> list[Prediction]:
        """Classify already-prepared images (N, C, H, W) in [0, 1]."""
        from cnnlab.engine.validate import check_logits

        logits = np.asarray(self.backend.logits(x), dtype=np.float64)
        check_logits(logits, len(x), len(self.classes), getattr(self.backend, "path", "model"))
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        out = []
        for row in probs:
            label = int(row.argmax())
            out.append(
                Prediction(
                    label, self.classes[label], float(row[label]), row.tolist(), self.classes
                )
            )
        return out

    def predict(self, images: Sequence[Image.Image | str | Path | bytes]) -> list[Prediction]:
        """Classify PIL images, paths or encoded image bytes."""
        from cnnlab.images import read_image

        if not images:
            return []
        prepared = []
        for source in images:
            image = source if isinstance(source, Image.Image) else read_image(source)
            try:
                prepared.append(self.prepare(image))
            except ImageError as exc:  # name the file, as read_image's own errors do
                if not isinstance(source, str | Path):
                    raise
                raise ImageError(f"{source}: {exc}") from None
        return self.predict_arrays(np.stack(prepared))

    def predict_paths(self, paths: Sequence[str | Path]) -> list[Prediction]:
        return self.predict(list(paths))


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
