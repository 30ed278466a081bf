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
