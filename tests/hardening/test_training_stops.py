"""Training that must stop cleanly: a loss that becomes NaN or infinite, and SIGTERM.

A diverging run stops with one line naming the step and the checkpoint that still holds finite
weights (like Keras' ``TerminateOnNaN``, without losing the good weights): no checkpoint is ever
written with NaN or infinity in it. SIGTERM (``kill``, ``docker stop``, systemd, batch
schedulers) is handled like Ctrl-C: ``last`` is saved at the next batch boundary, the resume
command is printed and the exit status is 143.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import TrainConfig
from cnnlab.engine import fit, load_checkpoint
from cnnlab.engine.callbacks import Callback
from cnnlab.engine.loop import TrainingDiverged


class PoisonWeights(Callback):
    """Fill every weight with NaN after optimiser step ``at``, or after the last step of epoch
    ``epoch`` (what a diverging step does)."""

    def __init__(self, at: int | None = None, epoch: int | None = None):
        self.at, self.epoch = at, epoch

    def on_batch_end(self, state, logs) -> None:
        at_epoch_end = self.epoch is not None and state.epoch_done and state.epoch == self.epoch
        if state.step == self.at or at_epoch_end:
            with torch.no_grad():
                for p in state.raw_model.parameters():
                    p.fill_(float("nan"))


def _finite(path: Path) -> bool:
    state = load_checkpoint(path)["model_state"]
    return all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point())


def test_nan_weights_stop_training_and_keep_the_last_finite_checkpoint(tmp_path):
    config = TrainConfig(
        model="lenet5", dataset="digits", epochs=3, batch_size=64, val_size=200, threads=1,
        seed=0, runs_dir=str(tmp_path), name="nan", checkpoint_every=2,
    )  # fmt: skip
    with pytest.raises(TrainingDiverged) as caught:
        fit(config, callbacks=[PoisonWeights(at=5)])
    message = str(caught.value)
    assert "\n" not in message
    last = caught.value.run_dir / "checkpoints" / "last.pt"
    assert re.fullmatch(
        r"training stopped at step 6: the loss became NaN; the last finite weights are in "
        rf"{re.escape(str(last))}; try a lower learning rate",
        message,
    ), message
    assert load_checkpoint(last)["step"] == 4 and _finite(last)
    for path in (caught.value.run_dir / "checkpoints").glob("*.pt"):
        assert _finite(path), f"{path} holds non-finite weights"


def test_nan_in_weights_at_an_evaluation_point_is_never_saved(tmp_path):
    """The step that ends an epoch poisons the weights: `best`/`last` keep the previous ones."""
    config = TrainConfig(
        model="lenet5", dataset="digits", epochs=3, batch_size=64, val_size=200, threads=1,
        seed=0, runs_dir=str(tmp_path), name="nan-eval",
    )  # fmt: skip
    with pytest.raises(TrainingDiverged, match="the weights became NaN or infinite") as caught:
        fit(config, callbacks=[PoisonWeights(epoch=1)])  # the second epoch's last step
    saved = list(caught.value.run_dir.rglob("*.pt"))
    assert {p.name for p in saved} == {"best.pt", "last.pt"}  # from the first epoch
    for path in saved:
        assert _finite(path), f"{path} holds non-finite weights"
        assert load_checkpoint(path)["epoch"] == 1


def test_cli_run_whose_loss_explodes_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "digits", "--model", "mlp", "--optimizer", "sgd",
              "--lr", "100", "--momentum", "0.9", "--epochs", "2", "--threads", "1",
              "--runs-dir", "runs", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert re.fullmatch(
        r"cnnlab: error: training stopped at step \d+: the loss became (NaN|infinite); .*; try "
        r"a lower learning rate\n",
        err,
    ), err
    for path in Path("runs").rglob("*.pt"):
        assert _finite(path), f"{path} holds non-finite weights"


@pytest.mark.slow
def test_sigterm_saves_last_prints_resume_and_exits_143(tmp_path):
    argv = [sys.executable, "-m", "cnnlab", "train", "--dataset", "digits", "--model", "lenet5",
            "--epochs", "200", "--threads", "1", "--runs-dir", "runs", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # training has begun once the first epoch's history is written
        while not list(tmp_path.glob("runs/*/version_0/history.json")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 143, (proc.returncode, err)
    assert "Traceback" not in err, err
    run = next(tmp_path.glob("runs/*/version_0"))
    lines = err.splitlines()
    assert re.fullmatch(r"cnnlab: terminated \(SIGTERM\): stopped at step (\d+), saved .*last\.pt",
                        lines[0]), err  # fmt: skip
    assert (
        lines[1]
        == f"cnnlab: resume with: cnnlab train --resume {Path('runs') / run.parent.name / run.name}"
    ), err
    step = int(re.search(r"step (\d+)", lines[0]).group(1))
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step
