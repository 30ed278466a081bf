"""Server test fixtures: the predictor of `trained_run` (tests/conftest.py), an app, a client."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def predictor(trained_run):
    from cnnlab.run import load

    return load(trained_run)


@pytest.fixture(scope="session")
def settings():
    from cnnlab.serve.app import ServeSettings

    # Small limits so the oversize cases are cheap to build.
    return ServeSettings(max_upload_bytes=200_000, max_pixels=4_000_000)


@pytest.fixture(scope="session")
def client(predictor, settings):
    from fastapi.testclient import TestClient

    from cnnlab.serve.app import create_app

    with TestClient(create_app(predictor, settings)) as c:
        yield c


@pytest.fixture(scope="session")
def mnist_pngs(shared_data) -> list[tuple[bytes, int]]:
    """The first 20 MNIST test digits as PNG bytes with their labels."""
    from cnnlab.data import load_dataset

    test = load_dataset("mnist", "test", data_dir=shared_data / "mnist", download=False)
    out = []
    for img, label in zip(test.images[:20, 0].numpy(), test.labels[:20].tolist(), strict=True):
        buf = io.BytesIO()
        Image.fromarray(img.astype(np.uint8)).save(buf, format="PNG")
        out.append((buf.getvalue(), int(label)))
    return out
