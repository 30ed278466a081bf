"""cnnlab.images: every mode Pillow stores, bad files, atomic writes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnnlab.errors import CnnlabError, ImageError
from cnnlab.images import (
    load_named_image,
    read_image,
    save_image,
    to_gray_array,
    to_rgb_array,
)


def _png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_named_samples_are_photos():
    china = load_named_image("china")
    assert china.shape == (427, 640, 3)
    assert china.min() >= 0.0 and china.max() <= 1.0
    gray = load_named_image("flower", gray=True)
    assert gray.shape == (427, 640)


@pytest.mark.parametrize(
    "mode,value,expected",
    [
        ("L", 128, 128 / 255),
        ("RGB", (255, 0, 0), 0.299),
        ("I;16", 65535, 1.0),
        ("CMYK", (0, 0, 0, 0), 1.0),
    ],
)
def test_gray_conversion_per_mode(mode, value, expected):
    img = read_image(
        _png_bytes(Image.new(mode, (3, 2), value), "TIFF" if mode == "CMYK" else "PNG")
    )
    arr = to_gray_array(img)
    assert arr.shape == (2, 3)
    assert arr[0, 0] == pytest.approx(expected, abs=2 / 255)


def test_transparent_pixels_composite_on_white():
    img = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    img.putpixel((0, 0), (0, 0, 0, 255))
    arr = to_gray_array(read_image(_png_bytes(img)))
    assert arr[0, 0] == 0.0 and arr[1, 1] == 1.0
    assert to_rgb_array(read_image(_png_bytes(img))).shape == (2, 2, 3)


def test_animated_gif_takes_first_frame():
    frames = [Image.new("L", (4, 4), v) for v in (10, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    arr = to_gray_array(read_image(buf.getvalue()))
    assert arr.shape == (4, 4) and arr.max() < 0.2


@pytest.mark.parametrize(
    "payload,message",
    [
        (b"", "empty file, not an image"),
        (b"hello, I am text", "not a readable image"),
    ],
)
def test_bad_bytes(payload, message):
    with pytest.raises(ImageError, match=message):
        read_image(payload, name="upload.png")


def test_truncated_png_names_the_file(tmp_path):
    data = _png_bytes(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    )
    bad = tmp_path / "cut.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png"):
        read_image(bad)


def test_pixel_limit_is_enforced():
    with pytest.raises(ImageError, match="image too large"):
        read_image(_png_bytes(Image.new("L", (200, 200))), max_pixels=100 * 100)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="image not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        read_image(tmp_path)


def test_save_image_round_trip_and_no_partial_file(tmp_path):
    arr = np.linspace(0, 1, 12).reshape(3, 4)
    out = save_image(tmp_path / "a.png", arr)
    back = np.asarray(Image.open(out), dtype=np.float64) / 255
    np.testing.assert_allclose(back, arr, atol=1 / 255)
    with pytest.raises(ImageError, match="NaN"):
        save_image(tmp_path / "b.png", np.full((2, 2), np.nan))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    with pytest.raises(CnnlabError, match="output folder does not exist"):
        save_image(tmp_path / "missing" / "c.png", arr)
    with pytest.raises(CnnlabError, match="output folder is a file"):
        save_image(tmp_path / "a.png" / "c.png", arr)


def test_only_regular_files_are_read(tmp_path):
    """Devices and pipes are refused before a byte is read: no endless read, no hang."""
    import os

    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    with pytest.raises(ImageError, match=r"image is a named pipe \(FIFO\), not a regular file"):
        read_image(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match="image is a character device, not a regular file"):
        read_image(tmp_path / "zero.png")


def test_read_regular_file_caps_the_size(tmp_path):
    from cnnlab.fileio import read_regular_file

    path = tmp_path / "big.bin"
    path.write_bytes(bytes(1000))
    assert read_regular_file(path, limit=1000) == bytes(1000)
    with pytest.raises(
        CnnlabError, match=r"file too large: .*big\.bin is 1,000 bytes \(limit 999\)"
    ):
        read_regular_file(path, limit=999)


@pytest.mark.parametrize(
    ("image", "blank"),
    [
        (np.full((9, 9), 0.5), True),
        (np.full((9, 9, 3), [0.9, 0.1, 0.4]), True),  # one flat colour
        (np.full((9, 9), 0.5) + np.random.default_rng(0).uniform(-0.01, 0.01, (9, 9)), True),
        (np.eye(9), False),
        (np.dstack([np.eye(9) * 0, np.eye(9), np.zeros((9, 9))]), False),  # a green stroke
    ],
)
def test_is_blank(image, blank):
    from cnnlab.images import is_blank

    assert is_blank(image) is blank
