"""Image folders: classes from sub-folders, grayscale-aware, resized, bad files named/skipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import load_image_folder
from cnnlab.errors import DataError, ImageError


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "shapes"
    (root / "dog").mkdir(parents=True)
    (root / "cat").mkdir()
    (root / ".hidden").mkdir()
    Image.new("L", (28, 28), 255).save(root / "cat" / "white.png")
    Image.new("RGB", (100, 60), (255, 0, 0)).save(root / "cat" / "red.jpg", quality=100)
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # fully transparent: white when flattened
    rgba.save(root / "dog" / "clear.png")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(root / "dog" / "deep.png")
    (root / "dog" / "notes.txt").write_text("not an image, ignored by extension")
    (root / "dog" / ".DS_Store").write_bytes(b"junk")
    return root


def test_classes_sorted_gray_and_resized(folder):
    ds = load_image_folder(folder, input_size=28, channels=1)
    assert ds.classes == ("cat", "dog")
    assert ds.images.shape == (4, 1, 28, 28) and str(ds.images.dtype) == "torch.uint8"
    assert ds.labels.tolist() == [0, 0, 1, 1]
    # cat/red.jpg then cat/white.png (sorted by name); red -> ITU-R 601 luma 0.299 * 255 = 76
    assert abs(int(ds.images[0].float().mean()) - 76) <= 2
    assert int(ds.images[1].min()) == 255
    assert int(ds.images[2].min()) == 255  # transparent on white
    assert int(ds.images[3].min()) == 255  # 16-bit full scale


def test_rgb_and_rectangular_size(folder):
    ds = load_image_folder(folder, input_size=(20, 32), channels=3)
    assert ds.images.shape == (4, 3, 20, 32)
    red = ds.images[0].float().mean((1, 2))
    assert red[0] > 250 and red[1] < 5 and red[2] < 5


def test_unreadable_file_named(folder):
    bad = folder / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageError) as info:
        load_image_folder(folder)
    assert str(info.value) == f"not a readable image: {bad}"


def test_skip_bad_warns_and_continues(folder):
    bad = folder / "cat" / "empty.png"
    bad.write_bytes(b"")
    with pytest.warns(UserWarning) as record:
        ds = load_image_folder(folder, skip_bad=True)
    assert [str(w.message) for w in record] == [
        f"skipping unreadable image: empty file, not an image: {bad}"
    ]
    assert len(ds) == 4 and ds.labels.tolist() == [0, 0, 1, 1]


def test_folder_errors(tmp_path):
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path / "missing")
    assert str(info.value) == f"image folder not found: {tmp_path / 'missing'}"
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path)
    assert str(info.value) == (
        f"{tmp_path}: no class sub-folders; a classifier needs at least two "
        f"({tmp_path}/<class>/<image>.png)"
    )
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match=r"only one class folder \(a\)"):
        load_image_folder(tmp_path)
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"a: class folder has no image files"):
        load_image_folder(tmp_path)
    with pytest.raises(DataError) as info:
        load_image_folder(tmp_path, channels=4)
    assert str(info.value) == "channels=4 must be 1 (grayscale) or 3 (RGB)"
