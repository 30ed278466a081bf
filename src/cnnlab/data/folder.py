"""The user's own images, one sub-folder per class (like torchvision's ``ImageFolder``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnlab.data.dataset import ArrayDataset
from cnnlab.errors import DataError, ImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm")


def _size_pair(input_size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if h < 1 or w < 1:
        raise DataError(f"input_size={input_size} must be positive")
    return int(h), int(w)


def _resize_channel(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W) plane in [0, 1] to ``size`` (h, w); Pillow antialiases downscaling."""
    if plane.shape == size:
        return plane
    img = Image.fromarray(plane.astype(np.float32), mode="F")
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR))


def image_to_uint8(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Read one image as uint8 (C, H, W): gray for 1 channel, RGB for 3, resized to ``size``."""
    from cnnlab.images import read_image, to_gray_array, to_rgb_array

    img = read_image(path)
    if channels == 1:
        planes = [to_gray_array(img)]
    else:
        rgb = to_rgb_array(img)
        planes = [rgb[:, :, c] for c in range(3)]
    arr = np.stack([_resize_channel(p, size) for p in planes])
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def list_image_folder(root: str | Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names (sorted sub-folder names) and ``(path, label)`` for every image file.

    Hidden files and files without an image extension are ignored, like ImageFolder does.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[0] != "."))
    if len(classes) < 2:
        found = f"only one class folder ({classes[0]})" if classes else "no class sub-folders"
        raise DataError(
            f"{root}: {found}; a classifier needs at least two ({root}/<class>/<image>.png)"
        )
    samples = []
    for label, name in enumerate(classes):
        files = sorted(
            p
            for p in (root / name).rglob("*")
            if p.is_file() and p.name[0] != "." and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            exts = " ".join(IMAGE_EXTENSIONS)
            raise DataError(f"{root / name}: class folder has no image files ({exts})")
        samples.extend((p, label) for p in files)
    return classes, samples


def load_image_folder(
    root: str | Path,
    input_size: int | tuple[int, int] = 28,
    channels: int = 1,
    skip_bad: bool = False,
) -> ArrayDataset:
    """Load ``root/<class>/<image>`` files into memory, resized to ``input_size``.

    Args:
        root: folder with one sub-folder per class (class index = sorted name order).
        input_size: output side (or ``(h, w)``); every image is resized to it (no cropping).
        channels: 1 = grayscale (colour converted by luma, transparency on white), 3 = RGB.
        skip_bad: leave out unreadable images with a ``warnings.warn`` naming each, instead of
            failing on the first.

    Raises:
        ImageError: an unreadable image (the message names the file) when not ``skip_bad``.
        DataError: missing folder, no classes, an empty class, or nothing readable.

    >>> ds = load_image_folder("my_digits/", input_size=28, channels=1)  # doctest: +SKIP
    >>> ds.images.shape, ds.classes  # doctest: +SKIP
    (torch.Size([20, 1, 28, 28]), ('0', '1'))
    """
    if channels not in (1, 3):
        raise DataError(f"channels={channels} must be 1 (grayscale) or 3 (RGB)")
    size = _size_pair(input_size)
    classes, samples = list_image_folder(root)
    images, labels = [], []
    for path, label in samples:
        try:
            images.append(image_to_uint8(path, size, channels))
        except ImageError as exc:
            if not skip_bad:
                raise
            warnings.warn(f"skipping unreadable image: {exc}", stacklevel=2)
            continue
        labels.append(label)
    if not images:
        raise DataError(f"{root}: none of the {len(samples)} image files could be read")
    x = torch.from_numpy(np.stack(images))
    y = torch.tensor(labels, dtype=torch.int64)
    return ArrayDataset(x, y, classes, Path(root).name)
