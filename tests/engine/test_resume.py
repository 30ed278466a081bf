"""kill -9 in the middle of an epoch, resume, and end with bit-identical weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.config import TrainConfig
from cnnlab.engine import fit, load_checkpoint

ARGS = dict(
    dataset="mnist",
    limit_train=1500,
    val_size=300,
    batch_size=60,
    epochs=2,
    optimizer="sgd",
    momentum=0.9,
    lr=0.05,
    schedule="one-cycle",
    checkpoint_every=4,
    threads=1,
    deterministic=True,
    seed=3,
    name="resume",
)


def _flags(runs_dir: Path) -> list[str]:
    flags = []
    for key, value in {**ARGS, "runs_dir": str(runs_dir)}.items():
        flag = "--" + key.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)]
    return flags


def _wait_for_mid_epoch_checkpoint(path: Path, proc: subprocess.Popen, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training ended before a mid-epoch checkpoint (rc={proc.returncode})")
        if path.is_file():
            try:
                payload = load_checkpoint(path)
            except Exception:  # replaced while reading: try again
                payload = None
            if payload and payload["batch_in_epoch"] > 0 and payload["step"] >= 8:
                return
        time.sleep(0.05)
    pytest.fail("no mid-epoch checkpoint appeared")


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_is_bit_identical(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "cnnlab", "train", *_flags(runs), "--quiet"]
    proc = subprocess.Popen(cmd, env={**os.environ, "CNNLAB_DATA": str(shared_data)})
    last = runs / "resume" / "version_0" / "checkpoints" / "last.pt"
    try:
        _wait_for_mid_epoch_checkpoint(last, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    interrupted = load_checkpoint(last)
    assert 0 < interrupted["step"] < 2 * 20

    resumed = fit(TrainConfig(**ARGS, runs_dir=str(runs)), resume=last.parent.parent)
    straight = fit(TrainConfig(**ARGS, runs_dir=str(tmp_path / "straight")))

    assert resumed.steps == straight.steps == 2 * 20
    a, b = resumed.model.state_dict(), straight.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in straight.history]
