"""Fixtures for the viz tests: a PNG checker and (later) a tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


def check_png(path: Path, fig, dpi: int = 100) -> tuple[int, int]:
    """A valid PNG whose pixel size is the figure size times the dpi; no temp file left."""
    assert path.is_file(), path
    with Image.open(path) as img:
        img.verify()  # raises on a truncated / corrupt file
    with Image.open(path) as img:
        assert img.format == "PNG"
        size = img.size
    width, height = fig.get_size_inches()
    assert size == (round(width * dpi), round(height * dpi))
    assert not list(path.parent.glob(f".{path.name}.*")), "temp file left behind"
    return size


@pytest.fixture
def assert_png():
    return check_png
