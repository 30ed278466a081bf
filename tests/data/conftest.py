"""Session caches of the real datasets (loaded once: MNIST train takes ~0.3-0.6 s)."""

from __future__ import annotations

import gzip
import types
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import load_dataset


@pytest.fixture(scope="session")
def mnist_train(shared_data):
    return load_dataset("mnist", "train", data_dir=shared_data, download=False)


@pytest.fixture(scope="session")
def mnist_test(shared_data):
    return load_dataset("mnist", "test", data_dir=shared_data, download=False)


@pytest.fixture(scope="session")
def fashion_train(shared_data):
    return load_dataset("fashion-mnist", "train", data_dir=shared_data, download=False)


def _idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """Encode ``array`` as IDX (big-endian header) for writing bad files in tests."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_idx(path: Path, array: np.ndarray, code: int = 0x08, compress: bool = True) -> Path:
    data = _idx_bytes(array, code)
    path.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return path


@pytest.fixture(scope="session")
def idx():
    """Helpers to write IDX files: ``idx.bytes(array, code)``, ``idx.write(path, array, ...)``."""
    return types.SimpleNamespace(bytes=_idx_bytes, write=_write_idx)
