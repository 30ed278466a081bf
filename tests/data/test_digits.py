"""The built-in digits dataset (scikit-learn 8x8 upsampled to 28x28)."""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.data import load_dataset


def test_digits_splits():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape == (1438, 1, 28, 28) and test.images.shape == (359, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.classes == tuple("0123456789") and train.name == "digits"
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0
    assert sum(train.class_counts()) + sum(test.class_counts()) == 1797


def test_digits_match_sklearn_and_are_deterministic():
    # facts of sklearn.datasets.load_digits (not imported here: it costs seconds)
    from cnnlab.data.digits import _digits_arrays

    images8, target = _digits_arrays()
    assert images8.shape == (1797, 8, 8) and images8.max() == 16
    assert images8[0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    assert np.bincount(target).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    test = load_dataset("digits", "test")
    assert np.array_equal(test.labels.numpy(), target[-359:])
    # the 28x28 image averaged back down to 8x8 follows the original closely
    small = torch.nn.functional.adaptive_avg_pool2d(test.images[:20].float(), 8)
    ref = torch.from_numpy(images8[-359:][:20]).float() * 255 / 16
    corr = np.corrcoef(small.flatten().numpy(), ref.flatten().numpy())[0, 1]
    assert corr > 0.95
    assert torch.equal(load_dataset("digits", "test").images, test.images)


def test_subset_masks_and_range():
    import pytest

    from cnnlab.errors import DataError

    test = load_dataset("digits", "test")
    mask = test.labels == 3
    assert test.subset(mask).labels.tolist() == [3] * int(mask.sum())
    assert test.subset(np.array([0, -1])).labels.tolist() == [
        int(test.labels[0]),
        int(test.labels[-1]),
    ]
    with pytest.raises(DataError) as info:
        test.subset([0, 359])
    assert str(info.value) == "subset index 359 out of range for 359 samples"
