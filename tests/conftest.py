"""Shared fixtures. Real datasets come from CNNLAB_DATA (the Makefile sets ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def data_root() -> Path:
    """The folder holding mnist/ and fashion-mnist/; fails (never skips) when it is missing."""
    root = os.environ.get("CNNLAB_DATA")
    if not root:
        pytest.fail(
            "CNNLAB_DATA is not set: point it at a folder holding mnist/ and fashion-mnist/"
        )
    path = Path(root)
    for name in ("mnist", "fashion-mnist"):
        if not (path / name).is_dir():
            pytest.fail(f"dataset folder missing: looked for {path / name} (CNNLAB_DATA={root})")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return data_root()


@pytest.fixture
def run_cli(capsys):
    """Run the ``cnnlab`` CLI in-process: ``run_cli(*argv) -> (exit code, stdout, stderr)``."""
    from cnnlab.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, shared_data) -> Path:
    """One small trained MNIST run for the serve and export tests (tests/viz has a smaller one).

    tutorial_cnn on 10,000 training images for one epoch (one-cycle Adam, batch 64, one thread so
    a busy machine does not oversubscribe): about 97% test accuracy, enough to read a clearly
    drawn digit.
    """
    from cnnlab.config import TrainConfig
    from cnnlab.engine import fit

    config = TrainConfig(
        model="tutorial_cnn", dataset="mnist", limit_train=10_000, epochs=1, batch_size=64,
        lr=0.004, schedule="one-cycle", val_size=500, threads=1, seed=0, name="fixture",
        runs_dir=str(tmp_path_factory.mktemp("trained-runs")),
        data_dir=str(shared_data / "mnist"),
    )  # fmt: skip
    return Path(fit(config).run_dir)
