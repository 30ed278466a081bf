"""One small trained MNIST run shared by the serve and export tests (trained once per session).

tutorial_cnn on 10,000 training images for one epoch (one-cycle Adam, batch 64, one thread so a
busy machine does not oversubscribe): about 97% test accuracy, enough to read a clearly drawn
digit. The run is cached under pytest's session temp folder, so tests/test_export.py and
tests/serve/ share it even though they load this helper separately.
"""

from __future__ import annotations

from pathlib import Path

FIXTURE_CONFIG = {
    "model": "tutorial_cnn",
    "dataset": "mnist",
    "limit_train": 10_000,
    "epochs": 1,
    "batch_size": 64,
    "lr": 0.004,
    "schedule": "one-cycle",
    "val_size": 500,
    "threads": 1,
    "seed": 0,
    "name": "fixture",
}


def trained_run(base: Path, data_dir: Path) -> Path:
    """The run folder of the fixture model under ``base`` (trained on first use)."""
    from cnnlab.config import TrainConfig
    from cnnlab.engine import fit

    runs = base / "cnnlab-trained-runs"
    done = runs / "DONE"
    if done.is_file():
        return Path(done.read_text())
    cfg = TrainConfig(**FIXTURE_CONFIG, runs_dir=str(runs), data_dir=str(data_dir / "mnist"))
    run_dir = Path(fit(cfg).run_dir)
    done.write_text(str(run_dir))
    return run_dir
