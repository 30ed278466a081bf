"""Pictures of a whole run: learning curves, confusion matrix, most confident errors.

The drawing itself is the engine's (``cnnlab.viz.training``); this module finds the run's
history and evaluates the run on its test split so the CLI and the report can call it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.errors import CheckpointError, CnnlabError
from cnnlab.viz.model_input import Run, load_run


def run_history(run: Any) -> list[dict]:
    """The per-evaluation history of a run folder (history.json) or checkpoint payload."""
    path = Path(str(run))
    if path.is_dir() and (path / "history.json").is_file():
        try:
            return list(json.loads((path / "history.json").read_text()))
        except (ValueError, OSError) as exc:
            raise CheckpointError(f"unreadable history: {path / 'history.json'} ({exc})") from None
    from cnnlab.engine.checkpoint import load_checkpoint, resolve_checkpoint

    payload = load_checkpoint(resolve_checkpoint(run, "last" if path.is_dir() else "best"))
    history = payload.get("history") or []
    if not history:
        raise CheckpointError(f"no training history in {run}")
    return list(history)


def write_curves(run: Any, out: str | Path) -> Path:
    """Loss and accuracy curves of ``run`` as a PNG (the engine's ``plot_curves``)."""
    from cnnlab.viz.training import plot_curves

    return plot_curves(run_history(run), out)


@dataclass
class TestEvaluation:
    run: Run
    result: Any  # cnnlab.engine.evaluate.EvalResult
    dataset: Any  # the test ArrayDataset


def evaluate_run(
    run: Any, *, which: str = "best", data_dir=None, limit: int | None = None
) -> TestEvaluation:
    """Evaluate a run on the test split of its dataset (the first ``limit`` images if given)."""
    from cnnlab.engine.data_setup import load_split
    from cnnlab.engine.evaluate import evaluate

    r = load_run(run, which)
    if not r.dataset:
        raise CheckpointError(f"{run}: the checkpoint does not name its dataset")
    ds = load_split(r.dataset, "test", r.data_dir(data_dir))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise CnnlabError(f"limit={limit!r} must be a positive number of test images")
        ds = ds.subset(range(min(limit, len(ds))))
    return TestEvaluation(r, evaluate(r.model, ds, r.normalizer), ds)


def write_confusion(ev: TestEvaluation, out: str | Path) -> Path:
    """The confusion matrix of an evaluation (the engine's ``plot_confusion``)."""
    from cnnlab.viz.training import plot_confusion

    title = f"{ev.run.name} on {ev.run.dataset} test: accuracy {ev.result.accuracy:.2%}"
    return plot_confusion(ev.result.confusion, ev.run.classes, out, title=title)


def write_worst_errors(ev: TestEvaluation, out: str | Path, n: int = 16) -> Path:
    """The most confidently wrong test images (the engine's ``plot_worst_errors``)."""
    from cnnlab.viz.training import plot_worst_errors

    probs = ev.result.logits.softmax(-1).numpy()
    return plot_worst_errors(
        ev.dataset.images.numpy(), probs, ev.result.labels.numpy(), ev.run.classes, out, n=n
    )
