"""scikit-learn's 8x8 ``digits`` upsampled to 28x28: a tiny built-in dataset for offline runs."""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

TEST_FRACTION = 0.2  # the last 20% (359 of 1,797) are the test split, deterministically


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 8, 8) values 0..16 and (1797,) labels, as ``sklearn.datasets.load_digits``.

    Reads scikit-learn's bundled ``digits.csv.gz`` directly: importing scikit-learn takes
    seconds, parsing the file milliseconds.
    """
    spec = importlib.util.find_spec("sklearn")
    locations = spec.submodule_search_locations if spec else None
    csv = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if csv is None or not csv.is_file():  # unusual install: let scikit-learn find it
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(csv, "rt") as handle:
        data = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)


@functools.lru_cache(maxsize=1)
def _digits_tensors(size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    images8, target = _digits_arrays()
    x = torch.from_numpy(images8).float().unsqueeze(1) * (255.0 / 16.0)  # 0..16 -> 0..255
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    images = x.round_().clamp_(0, 255).to(torch.uint8)
    labels = torch.from_numpy(target).long()
    return images, labels


def load_digits_split(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``digits`` split as (images uint8 (N, 1, 28, 28), labels): train = first 1,438,
    test = last 359 (``load_dataset("digits")`` wraps them in an ArrayDataset).

    >>> load_digits_split("test")[0].shape
    torch.Size([359, 1, 28, 28])
    """
    images, labels = _digits_tensors()
    n_test = round(len(labels) * TEST_FRACTION)
    cut = len(labels) - n_test
    part = slice(0, cut) if split == "train" else slice(cut, None)
    return images[part].clone(), labels[part].clone()
