"""Re-run the course notebooks' experiments with their own hyperparameters.

Each row is a TrainConfig built from what the notebook does (model, optimiser, learning rate,
batch, length, preprocessing, what it evaluates on), trained by :func:`fit`, then evaluated on the
10,000-image test set and set beside the number the notebook reports.

>>> [row.name for row in SEED_RUNS]
['tutorial', 'model_a', 'model_b', 'model_c', 'fashion_cnn']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.config import TrainConfig
from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class SeedRun:
    name: str
    notebook: str
    reported: str  # what the notebook prints or states
    settings: dict[str, Any]
    quick: dict[str, Any] = field(default_factory=dict)  # overrides for --quick


_ABC = dict(
    dataset="mnist",
    optimizer="sgd",
    batch_size=100,
    max_steps=3000,
    eval_every=500,
    validate_on="test",  # notebook 002 prints test accuracy every 500 iterations
    normalize="unit",
)
_ABC_QUICK = dict(limit_train=10_000, max_steps=600, eval_every=100)

SEED_RUNS: tuple[SeedRun, ...] = (
    SeedRun(
        "tutorial",
        "000 (and 003)",
        "000 prints no number; 003 (batch 1000, 10 epochs): over 99%",
        dict(
            model="tutorial_cnn",
            dataset="mnist",
            optimizer="adam",
            batch_size=150,
            epochs=5,
            val_fraction=0.0,
            normalize="unit",
        ),
        dict(limit_train=10_000, epochs=1),
    ),
    SeedRun(
        "model_a",
        "002",
        "98 (accuracy every 500 it: 98 98 98 98 98 98)",
        dict(model="model_a", lr=0.01, **_ABC),
        _ABC_QUICK,
    ),
    SeedRun(
        "model_b",
        "002",
        "93 (every 500 it: 86 89 89 91 92 93)",
        dict(model="model_b", lr=0.01, **_ABC),
        _ABC_QUICK,
    ),
    SeedRun(
        "model_c",
        "002",
        "97 (every 500 it: 92 95 96 96 97 97)",
        dict(model="model_c", lr=0.05, **_ABC),
        _ABC_QUICK,
    ),
    SeedRun(
        "fashion_cnn",
        "004",
        "not printed (Keras nadam, 10 epochs, last 5,000 for validation)",
        dict(
            model="fashion_cnn",
            dataset="fashion-mnist",
            optimizer="nadam",
            lr=1e-3,  # Keras's nadam default
            batch_size=32,  # Keras's fit default
            epochs=10,
            val_split="last",
            val_size=5000,
            normalize="pixel",  # (X - mean) / std per pixel, fitted on the training split
        ),
        dict(limit_train=10_000, val_size=1000, epochs=1),
    ),
)


def seed_configs(
    quick: bool = False,
    only: list[str] | None = None,
    runs_dir: str = "runs/reproduce",
    **overrides: Any,
) -> list[tuple[SeedRun, TrainConfig]]:
    """The TrainConfig of every selected notebook run."""
    names = [r.name for r in SEED_RUNS]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ConfigError(f"unknown reproduce row(s) {unknown}; choose from {', '.join(names)}")
    out = []
    for run in SEED_RUNS:
        if only and run.name not in only:
            continue
        values = {**run.settings, **(run.quick if quick else {})}
        values.update({k: v for k, v in overrides.items() if v is not None})
        name = f"{run.name}-quick" if quick else run.name
        out.append((run, TrainConfig().with_overrides(**values, runs_dir=runs_dir, name=name)))
    return out


def run_seeds(
    quick: bool = False,
    only: list[str] | None = None,
    runs_dir: str = "runs/reproduce",
    data_dir: str | None = None,
    threads: int | None = None,
    progress: Any = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train every selected row, evaluate on the test set, return one dict per row."""
    from cnnlab.engine.data_setup import load_split
    from cnnlab.engine.evaluate import evaluate
    from cnnlab.engine.loop import fit

    rows = []
    for run, config in seed_configs(quick, only, runs_dir, data_dir=data_dir, threads=threads):
        result = fit(config, progress=progress)
        test = load_split(config.dataset, "test", config.data_dir, config.download)
        normalizer = _normalizer(result.run_dir)
        metrics = evaluate(result.model, test, normalizer, config.eval_batch_size)
        curve = [round(100 * r["val_accuracy"]) for r in result.history if r.get("val_accuracy")]
        row = {
            "name": run.name,
            "notebook": run.notebook,
            "model": config.model,
            "dataset": config.dataset,
            "settings": _describe(config),
            "reported": run.reported,
            "test_accuracy": metrics.accuracy,
            "test_loss": metrics.loss,
            "curve": curve if config.validate_on == "test" else [],
            "train_seconds": round(result.train_seconds, 1),
            "run_dir": str(result.run_dir),
        }
        row["measured"] = f"{100 * metrics.accuracy:.2f}%" + (
            f" (every {config.eval_every} it: {' '.join(map(str, curve))})" if row["curve"] else ""
        )
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def _normalizer(run_dir: Path):
    from cnnlab.data import Normalizer
    from cnnlab.engine.checkpoint import load_checkpoint

    payload = load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt")
    return Normalizer.from_state(payload["normalizer"])


def _describe(config: TrainConfig) -> str:
    from cnnlab.engine.optim import learning_rate

    length = f"{config.max_steps} it" if config.max_steps else f"{config.epochs} ep"
    subset = f", first {config.limit_train:,}" if config.limit_train else ""
    return (
        f"{config.optimizer} lr {learning_rate(config):g}, batch {config.batch_size}, "
        f"{length}{subset}"
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: notebook, model, settings, reported, measured test accuracy, time."""
    lines = [
        "| notebook | model | settings | notebook reports | cnnlab measured (test) | train s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['notebook']} | {r['model']} | {r['settings']} | {r['reported']} | "
            f"{r['measured']} | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)
