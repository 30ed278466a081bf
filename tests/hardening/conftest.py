"""Fixtures for the hardening suite: a small trained run and the helper modules.

The run is lenet5 trained for one epoch on scikit-learn's digits (built in, no files): seconds
to train, and a real checkpoint for every entry point that loads one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def load_helper(name: str):
    """Import tests/hardening/<name>.py (test folders are not packages here)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
    return load_helper("_corpus")
