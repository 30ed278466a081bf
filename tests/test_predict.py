"""Preprocessing and prediction on real digit images written as PNG files in the test."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnlab.config import TrainConfig
from cnnlab.data import load_dataset
from cnnlab.engine import fit
from cnnlab.errors import CheckpointError, ImageError
from cnnlab.predict import collect_images, ink_on_black, preprocess, write_csv
from cnnlab.run import load

N = 8  # test digits per polarity


@pytest.fixture(scope="module")
def mnist_test(shared_data):
    return load_dataset("mnist", "test", data_dir=str(shared_data))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_data):
    config = TrainConfig(
        model="mlp",
        dataset="mnist",
        data_dir=str(shared_data),
        limit_train=6000,
        val_size=500,
        epochs=2,
        batch_size=64,
        lr=0.002,
        threads=1,
        runs_dir=str(tmp_path_factory.mktemp("runs")),
    )
    return fit(config).run_dir


def _write_pngs(folder, mnist_test) -> list[tuple[str, int]]:
    """The first N test digits: white-on-black at 28x28, and black-on-white drawn large,
    off-centre, on a wide canvas (like a photo of a drawing)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(N):
        digit = mnist_test.images[i, 0].numpy()
        label = int(mnist_test.labels[i])
        Image.fromarray(digit).save(folder / f"wb{i}.png")
        big = Image.fromarray(255 - digit).resize((150, 120), Image.Resampling.BICUBIC)
        canvas = Image.new("RGB", (320, 240), (250, 248, 240))  # off-white paper
        canvas.paste(big.convert("RGB"), (30 + 7 * i, 90))
        canvas.save(folder / f"bw{i}.png")
        out += [(f"wb{i}.png", label), (f"bw{i}.png", label)]
    return out


def test_preprocess_recovers_mnist_digits(mnist_test):
    for i in range(N):
        digit = mnist_test.images[i, 0].numpy()
        for img in (Image.fromarray(digit), Image.fromarray(255 - digit)):  # both polarities
            x = preprocess(img, "mnist")
            assert x.shape == (28, 28) and x.dtype == np.float32
            assert x.max() == pytest.approx(1.0) and x.min() >= 0
            corr = np.corrcoef(x.ravel(), digit.ravel() / 255.0)[0, 1]
            assert corr > 0.85, (i, corr)


def test_preprocess_geometry():
    img = Image.new("L", (200, 100), 255)  # a dark bar, 80 px tall, at the left of white paper
    img.paste(0, (10, 10, 30, 90))
    x = preprocess(img, "mnist")
    rows, cols = np.nonzero(x > 0.5)
    assert rows.max() - rows.min() + 1 in (19, 20, 21)  # longer side scaled to 20 px
    cy = (x * np.arange(28)[:, None]).sum() / x.sum()
    cx = (x * np.arange(28)[None, :]).sum() / x.sum()
    assert abs(cy - 14) <= 0.6 and abs(cx - 14) <= 0.6  # centre of mass where MNIST has it
    f = preprocess(img, "fashion")
    assert f.shape == (28, 28) and f[14, 2] > 0.5 and f[14, 8:].max() < 0.05  # inverted
    assert f[:6].max() < 0.05 and f[-6:].max() < 0.05  # padded top and bottom to a square
    assert np.all(ink_on_black(np.full((5, 5), 0.7)) == 0)  # blank page: no ink


def test_predict_real_pngs_both_polarities(tmp_path, run_dir, mnist_test):
    files = _write_pngs(tmp_path / "digits", mnist_test)
    predictor = load(run_dir)
    assert predictor.style == "mnist" and len(predictor.classes) == 10
    paths = collect_images([tmp_path / "digits"])
    assert len(paths) == 2 * N
    preds = predictor.predict(paths)
    by_name = {p.name: pr for p, pr in zip(paths, preds, strict=True)}
    for polarity in ("wb", "bw"):
        correct = [by_name[f].label == y for f, y in files if f.startswith(polarity)]
        assert sum(correct) >= N - 1, (polarity, correct)
    for pr in preds:
        assert abs(sum(pr.probs) - 1) < 1e-6 and pr.probability == max(pr.probs)
        assert pr.class_name == str(pr.label) and pr.top(3)[0][0] == pr.label
    csv_path = write_csv(tmp_path / "out.csv", paths, preds, predictor.classes)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("path,label,class_name,probability,0,1") and len(lines) == 2 * N + 1


def test_clear_errors(tmp_path, run_dir):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    predictor = load(run_dir)
    with pytest.raises(ImageError, match="notes.png"):
        predictor.predict([bad])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no image files"):
        collect_images([tmp_path / "empty"])
    with pytest.raises(ImageError, match="not found"):
        collect_images([tmp_path / "missing.png"])
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unknown model file type '.h5'"):
        load(tmp_path / "model.h5")
