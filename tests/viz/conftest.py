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


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, two threads mostly wait for each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def assert_png():
    return check_png


def _train(runs_dir: Path, data_dir: Path, model: str, **kw) -> Path:
    from cnnlab.config import TrainConfig
    from cnnlab.engine.loop import fit

    config = TrainConfig(
        model=model,
        dataset="mnist",
        data_dir=str(data_dir),
        download=False,
        limit_train=2000,
        val_fraction=0.05,
        epochs=1,
        batch_size=40,
        lr=0.003,
        threads=1,  # one thread: far faster than two on a shared, busy machine
        runs_dir=str(runs_dir),
        seed=0,
        **kw,
    )
    return fit(config).run_dir


@pytest.fixture(scope="session")
def trained_run(shared_data, tmp_path_factory) -> Path:
    """tutorial_cnn after one epoch on 2,000 MNIST images (about 85% accurate, a few seconds)."""
    return _train(tmp_path_factory.mktemp("runs"), shared_data, "tutorial_cnn")


@pytest.fixture(scope="session")
def mlp_run(shared_data, tmp_path_factory) -> Path:
    """The MLP baseline, trained the same way (for invariance --vs)."""
    return _train(tmp_path_factory.mktemp("runs"), shared_data, "mlp")
