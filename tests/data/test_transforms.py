"""Normalizer kinds against NumPy references; Augment shifts/rotations."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from cnnlab.data import Augment, Normalizer
from cnnlab.errors import DataError


def _close(actual, expected, atol=1e-6, rtol=1e-6):
    # np.testing instead of torch.testing: the latter costs ~2 s of lazy imports on first use
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=atol, rtol=rtol)


@pytest.fixture(scope="module")
def sample(mnist_train):
    return mnist_train.images[:5000]


def test_unit_and_half():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    ref = x.double() / 255
    _close(Normalizer("unit")(x).double(), ref, atol=1e-6, rtol=0)
    _close(Normalizer("half")(x).double(), (ref - 0.5) / 0.5, atol=1e-6, rtol=0)
    assert Normalizer("unit")(x).dtype == torch.float32


def test_meanstd_mnist(mnist_train):
    norm = Normalizer("meanstd").fit(mnist_train.images)
    assert norm.mean.item() == pytest.approx(0.1307, abs=1e-4)  # the well-known MNIST values
    assert norm.std.item() == pytest.approx(0.3081, abs=1e-4)
    out = norm(mnist_train.images[:1000])
    ref = (mnist_train.images[:1000].double() / 255 - 0.13066) / 0.30811
    _close(out.double(), ref, atol=2e-3, rtol=0)


def test_pixel_matches_notebook_004(sample):
    x = sample.numpy().astype(np.float64) / 255.0
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True) + 1e-7
    ref = (x - mean) / std
    norm = Normalizer("pixel").fit(sample)
    out = norm(sample).numpy()
    assert out.shape == sample.shape
    np.testing.assert_allclose(out, ref, atol=2e-3)
    assert np.isfinite(out).all()


def test_float_input_equals_uint8_input(sample):
    norm = Normalizer("pixel").fit(sample)
    _close(norm(sample[:10].float() / 255), norm(sample[:10]))
    _close(norm.denormalize(norm(sample[:10])), sample[:10].float() / 255)


@pytest.mark.parametrize("kind", ["unit", "half", "meanstd", "pixel"])
def test_state_round_trip_json_and_weights_only(sample, kind):
    norm = Normalizer(kind).fit(sample)
    state = json.loads(json.dumps(norm.state_dict()))
    buf = io.BytesIO()
    torch.save({"normalizer": norm.state_dict()}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)["normalizer"]
    for st in (state, loaded):
        _close(Normalizer.from_state(st)(sample[:8]), norm(sample[:8]))


def test_errors():
    with pytest.raises(DataError) as info:
        Normalizer("zscore")
    assert str(info.value) == "unknown normalizer kind 'zscore' (use unit, half, meanstd, pixel)"
    with pytest.raises(DataError) as info:
        Normalizer("pixel")(torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
    assert str(info.value) == "Normalizer('pixel') used before fit(training images)"
    with pytest.raises(DataError, match="lacks mean/std"):
        Normalizer.from_state({"kind": "meanstd"})


def test_augment_integer_shift_is_exact():
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    out = Augment(shift=2)(x, torch.Generator().manual_seed(0))
    assert torch.all(out.sum((1, 2, 3)) == 1)  # every dot moved whole, none lost
    pos = out[:, 0].flatten(1).argmax(1)
    dy, dx = pos // 9 - 4, pos % 9 - 4
    assert dy.abs().max() <= 2 and dx.abs().max() <= 2
    assert len(set(zip(dy.tolist(), dx.tolist(), strict=True))) > 10  # really random


def test_augment_rotation_keeps_mass_and_is_seeded():
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0
    aug = Augment(shift=0, rotate=15)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    _close(a.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.03, atol=0)
    assert torch.equal(Augment(0, 0)(x, torch.Generator()), x)


def test_shape_and_state_checks(sample):
    norm = Normalizer("pixel").fit(sample)
    with pytest.raises(DataError) as info:
        norm(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert str(info.value) == (
        "Normalizer('pixel') fitted on images of shape (1, 28, 28) cannot normalise a batch of "
        "shape (2, 3, 32, 32)"
    )
    with pytest.raises(DataError, match=r"got 0 images"):
        Normalizer("meanstd").fit(sample[:0])
    with pytest.raises(DataError, match=r"needs mean/std of one \(C, H, W\) shape"):
        Normalizer.from_state({"kind": "pixel", "mean": [0.5], "std": [0.1]})
    with pytest.raises(DataError, match=r"malformed"):
        Normalizer.from_state({"kind": "pixel", "mean": [[[0.5]], [0.1]], "std": "x"})


def test_augment_flip_mirrors_about_half_and_keeps_the_shift_draws():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 1, 8, 8, generator=gen)
    out = Augment(shift=0, flip=True)(x, torch.Generator().manual_seed(1))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all())  # each image is itself or its mirror
    assert 400 < int(mirrored.sum()) < 600
    again = Augment(shift=0, flip=True)(x, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # seeded
    # flip draws come after the shift draws: the shifts of a flip=True run equal flip=False's
    shifted = Augment(shift=2)(x, torch.Generator().manual_seed(3))
    both = Augment(shift=2, flip=True)(x, torch.Generator().manual_seed(3))
    assert bool(((both == shifted) | (both == shifted.flip(3))).flatten(1).all(1).all())
    assert "flip=True" in repr(Augment(flip=True)) and Augment(flip=True).state_dict()["flip"]


def test_augment_erase_blanks_one_rectangle_of_the_chosen_images():
    x = torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) + 0.5  # no zeros
    out = Augment(shift=0, erase=0.5)(x, torch.Generator().manual_seed(2))
    zero = out == 0
    erased = zero.flatten(1).any(1)
    assert 900 < int(erased.sum()) < 1100  # about half the images
    assert torch.equal(out[~zero], x[~zero])  # everything else untouched
    rows, cols = zero.any(3).squeeze(1), zero.any(2).squeeze(1)  # (B, 28) each
    heights, widths = rows.sum(1)[erased], cols.sum(1)[erased]
    # each blank is one full rectangle: its pixel count is height x width, 2-40% of the image
    assert torch.equal(zero.flatten(1).sum(1)[erased], heights * widths)
    area = (heights * widths).float() / (28 * 28)
    assert float(area.min()) >= 0.01 and float(area.max()) <= 0.42
    ratio = heights.float() / widths.float()
    assert float(ratio.min()) >= 0.2 and float(ratio.max()) <= 5.0  # 0.3-3.3 before rounding
    assert torch.equal(out, Augment(shift=0, erase=0.5)(x, torch.Generator().manual_seed(2)))
    # the shift and flip draws come first: erase=0 is the old augmentation exactly
    plain = Augment(shift=2, flip=True)(x, torch.Generator().manual_seed(3))
    both = Augment(shift=2, flip=True, erase=1.0)(x, torch.Generator().manual_seed(3))
    assert torch.equal(both[both != 0], plain[both != 0])
    with pytest.raises(DataError, match=r"Augment\(erase=1.5\): a probability in \[0, 1\]"):
        Augment(erase=1.5)


def test_config_flip_reaches_the_loader():
    from cnnlab.config import TrainConfig
    from cnnlab.engine.data_setup import make_loader, prepare_data

    config = TrainConfig(dataset="digits", augment=True, augment_flip=True, val_fraction=0.0)
    loader = make_loader(config, prepare_data(config))
    assert loader.augment is not None and loader.augment.flip
