"""Request decoding and small PNG encodings used by the server (no model needed)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from cnnlab.errors import ImageError
from cnnlab.serve.codec import (
    decode_base64_image,
    feature_grid,
    png_base64,
    scale_maps,
    sniff_format,
)


def png(size=(5, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 7).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(png()).decode(),
        "data:image/png;base64," + base64.b64encode(png()).decode(),
        "  " + base64.b64encode(png()).decode() + "\n",
        "\n".join(base64.b64encode(png()).decode()[i : i + 20] for i in range(0, 200, 20)),
    ],
)
def test_decode_base64_forms(text):
    assert decode_base64_image(text) == png()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("data:image/png;base64,", "empty"),
        ("data:image/png,iVBORw0K", "not base64"),
        ("abc$", "invalid base64"),
        ("abcde", "invalid base64"),  # wrong padding
    ],
)
def test_decode_base64_errors(text, words):
    with pytest.raises(ImageError, match=words):
        decode_base64_image(text)


def test_sniff_format():
    assert sniff_format(png()) == "PNG"
    jpeg, webp, gif = io.BytesIO(), io.BytesIO(), io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    Image.new("RGB", (4, 4)).save(webp, format="WEBP")
    Image.new("L", (4, 4)).save(gif, format="GIF")
    assert sniff_format(jpeg.getvalue()) == "JPEG"
    assert sniff_format(webp.getvalue()) == "WEBP"
    assert sniff_format(gif.getvalue()) is None
    assert sniff_format(b"") is None


def test_png_base64_round_trip():
    arr = np.linspace(0, 1, 28 * 28).reshape(28, 28)
    img = Image.open(io.BytesIO(base64.b64decode(png_base64(arr))))
    assert img.size == (28, 28) and img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), np.round(arr * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        png_base64(np.zeros((1, 2, 2)))


def test_scale_maps_per_map_and_flat_maps():
    maps = np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 3.0), -np.eye(2)])
    out = scale_maps(maps)
    np.testing.assert_allclose(out[0], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_array_equal(out[1], 0)  # a flat map has no pattern to show
    np.testing.assert_array_equal(out[2], [[0, 1], [1, 0]])


def test_feature_grid_layout():
    maps = np.random.default_rng(0).normal(size=(10, 5, 4))
    b64, rows, cols = feature_grid(maps, cols=4)
    assert (rows, cols) == (3, 4)
    grid = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))), dtype=np.float64) / 255
    assert grid.shape == (3 * 6 - 1, 4 * 5 - 1)
    np.testing.assert_allclose(grid[6:11, 5:9], scale_maps(maps)[5], atol=0.5 / 255 + 1e-9)
    assert np.all(np.abs(grid[5, :] - 128 / 255) < 1e-9)  # the gap row between maps
