"""fit(): the acceptance run on real MNIST, early stopping, run folders, schedules."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from cnnlab.config import TrainConfig
from cnnlab.engine import fit, load_checkpoint
from cnnlab.engine.callbacks import EarlyStopping
from cnnlab.engine.optim import lr_factor
from cnnlab.engine.runs import read_metrics
from cnnlab.run import load

# The example that is also an acceptance test: the notebook's net and optimiser on the first
# 8,000 MNIST training images for 2 epochs must reach this validation accuracy.
TARGET_VAL_ACCURACY = 0.95


def test_acceptance_tutorial_cnn_on_mnist_subset(tmp_path, shared_data):
    config = TrainConfig(
        model="tutorial_cnn",
        dataset="mnist",
        data_dir=str(shared_data),
        limit_train=8000,
        val_size=1000,
        epochs=2,
        batch_size=64,
        optimizer="adam",
        lr=0.002,
        normalize="meanstd",
        threads=1,
        runs_dir=str(tmp_path),
    )
    result = fit(config)
    assert result.history[-1]["val_accuracy"] >= TARGET_VAL_ACCURACY, result.history
    run = result.run_dir
    assert run == tmp_path / "tutorial_cnn-mnist" / "version_0"
    for name in ("config.yaml", "metrics.csv", "history.json", "curves.png"):
        assert (run / name).is_file() or name == "curves.png"  # curves come from the CLI
    rows = read_metrics(run)
    assert [r["epoch"] for r in rows] == [1.0, 2.0] and rows[-1]["step"] == 220
    assert json.loads((run / "history.json").read_text())[-1]["step"] == 220
    assert result.train_seconds > 0
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert len(best["split"]["val"]) == 1000  # an index tensor (see _split_tensors)
    assert best["config"]["limit_train"] == 8000 and best["dataset"] == "mnist"
    loaded = load(run)
    assert loaded.classes == tuple(str(i) for i in range(10))
    assert loaded.history == result.history and loaded.metrics == result.metrics
    # a second run gets the next version folder
    assert fit(config.with_overrides(max_steps=1, checkpoint_every=1)).run_dir.name == "version_1"


def test_early_stopping_stops_and_restores_best_weights(tmp_path):
    config = TrainConfig(
        model="mlp",
        dataset="digits",
        limit_train=300,
        val_fraction=0.3,
        epochs=60,
        batch_size=32,
        optimizer="adam",
        lr=0.01,
        early_stopping=True,
        patience=2,
        min_epochs=3,
        threads=1,
        runs_dir=str(tmp_path),
    )
    result = fit(config)
    losses = [r["val_loss"] for r in result.history]
    best_i = losses.index(min(losses))
    assert result.stopped_early
    assert len(losses) == max(best_i + 1 + 2, 3) < 60  # stopped `patience` evals after the best
    best = load_checkpoint(result.run_dir / "checkpoints" / "best.pt")
    assert best["metrics"]["val_loss"] == min(losses)
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, best["model_state"][key]), key
    last = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")
    assert last["step"] == result.history[-1]["step"] != best["step"]


def _state(step=0, per_epoch=10):
    model = torch.nn.Linear(1, 1)
    return SimpleNamespace(
        step=step,
        steps_per_epoch=per_epoch,
        raw_model=model,
        resumed_from=None,
        best_state=None,
        stop_training=False,
    )


@pytest.mark.parametrize(
    ("mode", "min_delta", "values", "stop_at"),
    [
        ("min", 0.0, [1.0, 0.9, 0.95, 0.96], 3),  # two evaluations without improvement
        ("min", 0.2, [1.0, 0.9, 0.85, 0.5], 2),  # 0.9 and 0.85 are within min_delta
        ("max", 0.0, [0.5, 0.6, 0.7, 0.8], None),  # keeps improving
        ("max", 0.0, [0.5, 0.4, 0.5, 0.3], 2),
    ],
)
def test_early_stopping_semantics(mode, min_delta, values, stop_at):
    stopper = EarlyStopping("m", mode, patience=2, min_delta=min_delta)
    state = _state()
    stopper.on_train_begin(state)
    stopped = None
    for i, value in enumerate(values):
        state.step = (i + 1) * 10
        stopper.on_evaluate(state, {"m": value})
        if state.stop_training and stopped is None:
            stopped = i
    assert stopped == stop_at


def test_min_epochs_delays_stopping():
    stopper = EarlyStopping("m", "min", patience=1, min_epochs=3)
    state = _state()
    stopper.on_train_begin(state)
    for epoch, value in enumerate([1.0, 2.0, 3.0, 4.0], start=1):
        state.step = epoch * state.steps_per_epoch
        stopper.on_evaluate(state, {"m": value})
        assert state.stop_training == (epoch >= 3)


def test_eval_every_logs_every_n_steps(tmp_path):
    config = TrainConfig(
        model="mlp",
        dataset="digits",
        limit_train=400,
        val_fraction=0.25,
        max_steps=25,
        eval_every=10,
        batch_size=30,
        threads=1,
        runs_dir=str(tmp_path),
    )
    result = fit(config)
    assert [r["step"] for r in result.history] == [10, 20, 25]
    assert result.steps == 25


def test_schedules():
    cfg = TrainConfig(schedule="one-cycle", warmup_fraction=0.25)
    f = lr_factor(cfg, steps_per_epoch=10, total_steps=100)
    assert f(0) == pytest.approx(1 / 25) and f(25) == pytest.approx(1.0)
    assert f(100) == pytest.approx(1e-4) and max(f(s) for s in range(101)) == pytest.approx(1)
    f = lr_factor(TrainConfig(schedule="cosine"), 10, 100)
    assert f(0) == 1 and f(50) == pytest.approx(0.5) and f(100) == pytest.approx(0)
    f = lr_factor(TrainConfig(schedule="step", step_epochs=2, step_gamma=0.5), 10, 100)
    assert [f(s) for s in (0, 19, 20, 40)] == [1, 1, 0.5, 0.25]
    assert lr_factor(TrainConfig(), 10, 100)(57) == 1
    assert not math.isnan(lr_factor(cfg, 1, 1)(1))


def test_whiten_runs_once_on_training_images_and_not_on_resume(tmp_path, monkeypatch):
    import cnnlab.models.init as init_mod

    calls = []
    real = init_mod.whiten_first_conv

    def spy(model, images, *args, **kwargs):
        calls.append(images.shape)
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(init_mod, "whiten_first_conv", spy)
    config = TrainConfig(
        model="speednet", dataset="digits", whiten=True, epochs=1, batch_size=64, threads=1,
        normalize="meanstd", runs_dir=str(tmp_path),
    )  # fmt: skip
    first = fit(config)
    assert len(calls) == 1 and calls[0][1:] == (1, 28, 28)  # the digits upscaled to 28x28
    assert first.train_seconds > 0
    start = load_checkpoint(first.run_dir / "checkpoints" / "last.pt")["model_state"]
    # a resumed run continues from its saved weights: no second whitening
    resumed = fit(config.with_overrides(epochs=2), resume=first.run_dir)
    assert len(calls) == 1
    assert resumed.steps == 2 * first.steps
    assert not torch.equal(resumed.model.state_dict()["conv1.weight"], start["conv1.weight"])
