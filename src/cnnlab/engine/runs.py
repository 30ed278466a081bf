"""Run folders: ``<runs_dir>/<name>/version_N/`` with config.yaml, metrics.csv, history.json.

>>> import tempfile
>>> d = new_run_dir(tempfile.mkdtemp(), "demo")
>>> d.name
'version_0'
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from cnnlab.config import RESUMABLE, TrainConfig
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.fileio import atomic_write_text

METRIC_COLUMNS = (
    "epoch",
    "step",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
)
_VERSION = re.compile(r"^version_(\d+)$")


def versions(parent: Path) -> list[Path]:
    """``version_N`` folders under ``parent``, in increasing N."""
    if not parent.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in parent.iterdir() if (m := _VERSION.match(p.name))]
    return [p for _, p in sorted(found)]


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """Create and return the next free ``version_N`` folder (safe against concurrent runs)."""
    parent = Path(runs_dir) / name
    parent.mkdir(parents=True, exist_ok=True)
    existing = versions(parent)
    n = int(existing[-1].name.split("_")[1]) + 1 if existing else 0
    while True:
        path = parent / f"version_{n}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def find_resume_dir(spec: str, runs_dir: str | Path, name: str) -> Path:
    """Resolve ``--resume``: a version folder, a run name folder (its latest version) or ``auto``.

    ``auto`` picks the latest version of ``<runs_dir>/<name>`` that has a ``last`` checkpoint.
    """
    path = Path(runs_dir) / name if spec == "auto" else Path(spec)
    if (path / "checkpoints" / "last.pt").is_file():
        return path
    candidates = [v for v in versions(path) if (v / "checkpoints" / "last.pt").is_file()]
    if not candidates:
        raise CheckpointError(f"nothing to resume in {path}: no checkpoints/last.pt found")
    return candidates[-1]


def resume_config(run_dir: str | Path, changes: dict[str, Any]) -> TrainConfig:
    """The config a resumed run continues with: its saved one, plus ``changes`` to the options
    that may change on resume (:data:`cnnlab.config.RESUMABLE`).

    Any other option given with a different value than the run's is refused (naming it), since
    it would silently not apply; ``runs_dir`` and ``name`` only locate the run.
    """
    run_dir = Path(run_dir)
    saved = TrainConfig.from_yaml(run_dir / "config.yaml")
    for key, value in changes.items():
        if (
            key not in RESUMABLE
            and key not in ("runs_dir", "name")
            and value != getattr(saved, key)
        ):
            flag = "--" + key.replace("_", "-")
            allowed = ", ".join("--" + k.replace("_", "-") for k in RESUMABLE)
            raise ConfigError(
                f"{flag} {value} cannot change when resuming {run_dir} (the run has "
                f"{getattr(saved, key)}); only {allowed} can"
            )
    return saved.with_overrides(**{k: v for k, v in changes.items() if k in RESUMABLE})


class RunLog:
    """Writes metrics.csv (one row per evaluation) and history.json (all rows) in a run folder."""

    def __init__(self, run_dir: Path, history: list[dict[str, Any]] | None = None):
        self.run_dir = Path(run_dir)
        self.history: list[dict[str, Any]] = list(history or [])

    def append(self, row: dict[str, Any]) -> None:
        self.history.append(dict(row))
        self.flush()

    def flush(self) -> None:
        # Rewritten whole (it is small): on resume the file matches the checkpoint's history.
        lines = [",".join(METRIC_COLUMNS)]
        for row in self.history:
            lines.append(",".join(_fmt(row.get(c)) for c in METRIC_COLUMNS))
        atomic_write_text(self.run_dir / "metrics.csv", "\n".join(lines) + "\n")
        atomic_write_text(self.run_dir / "history.json", json.dumps(self.history, indent=1))


def read_metrics(run_dir: str | Path) -> list[dict[str, float | None]]:
    """Read metrics.csv back as a list of dicts (empty cells -> None)."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [{k: float(v) if v else None for k, v in row.items()} for row in csv.DictReader(f)]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
