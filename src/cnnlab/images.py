"""Image I/O shared by filters, data folders, prediction and the server (NumPy + Pillow only).

Every function names the file it was given in its error, and every error is an
:class:`~cnnlab.errors.ImageError` with one line of text.

>>> img = load_named_image("china")
>>> img.shape, img.dtype
((427, 640, 3), dtype('float64'))
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import ImageError
from cnnlab.fileio import atomic_write_bytes, read_regular_file

# Largest image we decode (width x height); Pillow's own bomb guard is 89M and only warns below 2x.
MAX_PIXELS = 40_000_000
# Largest encoded image file read (a 40-Mpx PNG is far below it).
MAX_FILE_BYTES = 256 * 1024 * 1024
# scikit-learn's bundled sample photos, usable by name wherever an IMAGE is expected.
SAMPLE_IMAGES = ("china", "flower")

Source = str | os.PathLike | bytes


def _label(source: Source, name: str | None) -> str:
    if name:
        return name
    return "<uploaded bytes>" if isinstance(source, bytes | bytearray) else str(source)


def read_image(source: Source, *, max_pixels: int = MAX_PIXELS, name: str | None = None):
    """Open and fully decode an image from a path or bytes.

    Takes the first frame of animated images and applies the EXIF orientation. Refuses empty
    files, non-images, truncated data, images of 0 pixels and images over ``max_pixels``
    (decompression bombs) with an :class:`ImageError` naming the file.

    Args:
        source: a path or the raw bytes of an encoded image.
        max_pixels: the largest width x height accepted.
        name: how to call the image in messages (defaults to the path).

    Returns:
        A decoded ``PIL.Image.Image`` (mode as stored: L, RGB, RGBA, P, I;16, CMYK...).
    """
    label = _label(source, name)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"image not found: {label}")
        if path.is_dir():
            raise ImageError(f"expected an image file, got a directory: {label}")
        try:  # regular files only, size-capped: not /dev/zero, a FIFO or a 10 GB "photo"
            data = read_regular_file(path, limit=MAX_FILE_BYTES, what="image", error=ImageError)
        except OSError as exc:
            raise ImageError(f"cannot read image {label}: {exc.strerror or exc}") from None
    if not data:
        raise ImageError(f"empty file, not an image: {label}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(
                    f"image too large: {label} is {width}x{height} pixels "
                    f"(limit {max_pixels:,} pixels)"
                )
            if width == 0 or height == 0:
                raise ImageError(f"image has 0 pixels: {label} is {width}x{height}")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image too large (decompression bomb guard): {label}") from None
    except UnidentifiedImageError:
        raise ImageError(f"not a readable image: {label}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image: {label} ({exc})") from None
    except Exception as exc:  # Pillow's parsers also raise KeyError, TypeError... on bad bytes
        raise ImageError(
            f"corrupt or truncated image: {label} ({type(exc).__name__}: {exc})"
        ) from None
    return img


class BlankImageError(ImageError):
    """The image holds no ink at all (blank white or black, fully transparent, one colour)."""


# An image whose gray levels all lie within this range (8 of 255 levels) has nothing drawn on it.
BLANK_RANGE = 8 / 255


def is_blank(image: np.ndarray) -> bool:
    """True when an (H, W) or (H, W, C) image in [0, 1] is one flat colour (every channel
    within :data:`BLANK_RANGE`).

    >>> is_blank(np.full((5, 5), 0.7)), is_blank(np.eye(5))
    (True, False)
    """
    if image.size == 0:
        return True
    pixels = image.reshape(image.shape[0] * image.shape[1], -1)
    return float((pixels.max(0) - pixels.min(0)).max()) < BLANK_RANGE


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite transparent pixels on white (how a viewer shows a transparent drawing)."""
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("LA", "La", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA")).convert("RGB")
    return img


def _high_depth_gray(img: Image.Image) -> np.ndarray | None:
    """16-bit / 32-bit integer and float gray images scaled to [0, 1], else None."""
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.clip(arr / top, 0.0, 1.0)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():  # nanmin/nanmax would skip NaN and pass it on
            raise ImageError("float image contains NaN or infinity")
        lo, hi = float(arr.min()), float(arr.max())
        return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return None


def to_gray_array(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> float64 array (H, W) in [0, 1] (ITU-R 601 luma for colour)."""
    deep = _high_depth_gray(img)
    if deep is not None:
        return deep
    img = _flatten_alpha(img)
    if img.mode != "L":
        img = img.convert("RGB").convert("L")
    return np.asarray(img, dtype=np.float64) / 255.0


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> float64 array (H, W, 3) in [0, 1]."""
    deep = _high_depth_gray(img)
    if deep is not None:
        return np.repeat(deep[:, :, None], 3, axis=2)
    img = _flatten_alpha(img)
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


def load_named_image(spec: str | os.PathLike, *, gray: bool = False) -> np.ndarray:
    """Load ``"china"`` / ``"flower"`` (scikit-learn's sample photos) or an image path.

    Returns float64 in [0, 1]: (H, W) when ``gray`` or the file is single-channel, else (H, W, 3).
    """
    if isinstance(spec, str) and spec in SAMPLE_IMAGES:
        from sklearn.datasets import load_sample_image

        rgb = load_sample_image(f"{spec}.jpg").astype(np.float64) / 255.0
        if gray:
            return rgb @ np.array([0.299, 0.587, 0.114])
        return rgb
    img = read_image(spec)
    single = img.mode in ("1", "L", "LA", "I", "F") or img.mode.startswith("I;16")
    return to_gray_array(img) if gray or single else to_rgb_array(img)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Float in [0, 1] (clipped) or uint8 -> uint8."""
    arr = np.asarray(array)
    if arr.dtype == np.uint8:
        return arr
    if not np.isfinite(arr).all():
        raise ImageError("cannot save an image containing NaN or infinity")
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """(H, W) or (H, W, 3|4) float in [0, 1] or uint8 -> PNG bytes."""
    arr = to_uint8(array)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"cannot encode an array of shape {arr.shape} as an image")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def save_image(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save an array as a PNG atomically (see :func:`cnnlab.fileio.atomic_write_bytes`)."""
    return atomic_write_bytes(path, encode_png(array))
