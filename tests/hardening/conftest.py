"""Fixtures for the hardening suite: a small trained run and the helper modules.

The run is lenet5 trained for one epoch on scikit-learn's digits (built in, no files): seconds
to train, and a real checkpoint for every entry point that loads one.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """lenet5 after one epoch on digits: a run folder with best/last .pt and best.safetensors."""
    from cnnlab.config import TrainConfig
    from cnnlab.engine import fit

    runs = tmp_path_factory.mktemp("hardening-runs")
    config = TrainConfig(
        model="lenet5", dataset="digits", epochs=1, batch_size=64, val_size=200,
        threads=1, seed=0, runs_dir=str(runs), name="digits",
    )  # fmt: skip
    return Path(fit(config).run_dir).resolve()


@pytest.fixture(scope="session")
def corpus():
    import _corpus

    return _corpus
