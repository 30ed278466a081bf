"""Bytes in, bytes out for the server: base64 / data-URL decoding and small PNG encodings.

Pure NumPy + Pillow (no torch, no FastAPI), so the request parsing rules can be tested alone.

>>> decode_base64_image("data:image/png;base64,iVBORw0K")[:4]
b'\\x89PNG'
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image

from cnnlab.errors import ImageError

# Formats POST /predict accepts (Pillow's names); anything else is 415.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")


def sniff_format(data: bytes) -> str | None:
    """The accepted format named by the file's magic bytes, or None (Pillow's names).

    >>> sniff_format(b"\\x89PNG\\r\\n\\x1a\\n...")
    'PNG'
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_base64_image(text: str) -> bytes:
    """Decode a base64 string or a ``data:image/...;base64,`` URL into raw bytes.

    Raises:
        ImageError: empty text, a data URL that is not base64, or characters outside base64.
    """
    text = text.strip()
    if text.startswith("data:"):
        header, sep, payload = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ImageError(f"data URL is not base64-encoded: {header[:60]!r}")
        text = payload
    # Browsers and mail clients wrap base64 in lines; whitespace is not data.
    text = "".join(text.split())
    if not text:
        raise ImageError("empty image: the base64 string holds no data")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(f"invalid base64 image data ({exc})") from None
    if not data:
        raise ImageError("empty image: the base64 string holds no data")
    return data


def png_base64(array: np.ndarray) -> str:
    """Encode a 2-D float array in [0, 1] as a base64 8-bit gray PNG (no data: prefix)."""
    arr = np.asarray(array, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {arr.shape}")
    pixels = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def scale_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each (H, W) map of a (C, H, W) stack to [0, 1]; flat maps become 0.

    Per-map scaling shows each filter's pattern; a shared scale would leave most maps black.
    """
    maps = np.asarray(maps, dtype=np.float64)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1.0), 0.0)


def feature_grid(maps: np.ndarray, cols: int = 8, pad: int = 1) -> tuple[str, int, int]:
    """A (C, H, W) stack as one base64 PNG grid, each map scaled to [0, 1], ``pad`` px apart.

    One PNG per request instead of one per map: encoding 32 small PNGs cost more than the
    network itself. Returns ``(png_base64, rows, cols)``; unused cells and gaps are mid-gray.
    """
    c, h, w = maps.shape
    cols = max(1, min(cols, c))
    rows = -(-c // cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), 0.5)
    for i, plane in enumerate(scale_maps(maps)):
        r, k = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = plane
    return png_base64(grid), rows, cols
