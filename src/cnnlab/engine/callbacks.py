"""Callbacks: hooks fit() calls at fixed points, Keras style.

One style: subclass :class:`Callback` and override the hooks you need (the others do nothing).
Order inside fit(): train steps -> evaluate -> ``on_evaluate`` (early stopping decides, then
checkpoints are written) -> log. Progress (:class:`ProgressBar`) and pictures are callbacks
too, so the loop itself never prints or imports matplotlib.

>>> stop = EarlyStopping(monitor="val_loss", mode="min", patience=2)
>>> stop.improved(0.5), stop.improved(0.6)
(True, False)
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

from cnnlab.errors import ConfigError

# ``state`` in every hook is the loop's live TrainState (cnnlab.engine.loop); it is not imported
# here so that the loop depends on callbacks and not the other way round.
TrainState = Any


class Callback:
    """Base class: override the hooks you need. ``state`` is the loop's live ``TrainState``
    (``step``, ``epoch``, ``history``, ``raw_model``, ``run_dir``, ``stop_training``...)."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_begin(self, state: TrainState) -> None: ...

    def on_batch_end(self, state: TrainState, logs: dict[str, Any]) -> None: ...

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """Primitive state saved in checkpoints (for exact resume)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Monitor:
    """Tracks the best value of one metric (``mode`` min or max, ``min_delta`` margin)."""

    def __init__(self, monitor: str, mode: str = "min", min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"mode={mode!r} is not one of min, max")
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best: float | None = None

    def improved(self, value: float) -> bool:
        """Record ``value``; True when it beats the best by more than ``min_delta``."""
        if self.best is None:
            better = True
        elif self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = float(value)
        return better


class EarlyStopping(Callback, Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` evaluations.

    ``min_epochs``: never stop before this many epochs are done. With ``restore_best_weights``
    (the default) the model ends training with the weights of its best evaluation.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        min_epochs: int = 0,
        restore_best_weights: bool = True,
    ):
        Monitor.__init__(self, monitor, mode, min_delta)
        self.patience, self.min_epochs = patience, min_epochs
        self.restore_best_weights = restore_best_weights
        self.wait, self.best_step, self.stopped_step = 0, -1, None
        self.best_weights: dict[str, Any] | None = None

    def on_train_begin(self, state: TrainState) -> None:
        if state.resumed_from is None:  # Keras: state reset at the start of training
            self.best, self.wait, self.best_step, self.stopped_step = None, 0, -1, None
        elif self.restore_best_weights and state.best_state is not None:
            self.best_weights = state.best_state

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
        value = _metric(metrics, self.monitor)
        if self.improved(value):
            self.wait, self.best_step = 0, state.step
            if self.restore_best_weights:
                self.best_weights = copy.deepcopy(state.raw_model.state_dict())
            return
        self.wait += 1
        if self.wait >= self.patience and state.step >= self.min_epochs * state.steps_per_epoch:
            self.stopped_step = state.step
            state.stop_training = True

    def on_train_end(self, state: TrainState) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            state.raw_model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait, self.best_step = state["best"], state["wait"], state["best_step"]


class ModelCheckpoint(Callback):
    """Writes ``best`` (on improvement of ``monitor``) and ``last`` (each epoch, every N steps).

    Only the main process writes (``state.dist.is_main``).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        every_steps: int | None = None,
        min_delta: float = 0.0,
    ):
        # same min_delta as EarlyStopping, so `best` holds the weights it would restore
        self.tracker = Monitor(monitor, mode, min_delta)
        self.every_steps = every_steps

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
        if not state.has_validation:
            return
        if self.tracker.improved(_metric(metrics, self.tracker.monitor)):
            state.best_metrics = dict(metrics)
            state.save("best")

    def on_batch_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        if self.every_steps and state.step % self.every_steps == 0 and not state.epoch_done:
            state.save("last")

    def on_epoch_end(self, state: TrainState) -> None:
        if not state.has_validation:  # nothing to compare: the latest weights are the best
            state.best_metrics = dict(state.history[-1]) if state.history else {}
            state.save("best")
        state.save("last")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = state["best"]


def _metric(metrics: dict[str, Any], name: str) -> float:
    if name not in metrics or metrics[name] is None:
        known = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float)))
        raise ConfigError(f"monitor={name!r} is not a logged metric (have: {known})")
    return float(metrics[name])


class ProgressBar(Callback):
    """What fit() shows while it trains (``verbose`` 1 by default, 0 = nothing).

    In a terminal or a notebook with ipywidgets: one ``tqdm.auto`` bar per epoch plus a line
    per evaluation. Elsewhere (CI logs, ``| tee``, a notebook without widgets) and with
    ``verbose=2``: plain lines only, one per evaluation and at most one progress line every
    ``every_seconds`` within a long epoch, never carriage-return redraws.
    """

    def __init__(self, verbose: int = 1, every_seconds: float = 30.0, file: Any = None):
        self.verbose, self.every_seconds, self.file = verbose, every_seconds, file
        self.bar: Any = None
        self.last_line = 0.0

    def _stream(self) -> Any:
        return self.file or sys.stdout  # looked up late: Jupyter replaces sys.stdout

    def _bars(self) -> bool:
        if self.verbose != 1:
            return False
        if "ipykernel" in sys.modules:  # a notebook: widgets or nothing
            try:
                import ipywidgets  # noqa: F401
            except ImportError:
                return False
            return True
        return bool(getattr(sys.stderr, "isatty", lambda: False)())

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self._stream())
        else:
            print(text, file=self._stream(), flush=True)

    def on_epoch_begin(self, state: TrainState) -> None:
        self.last_line = time.monotonic()
        if self.verbose and self._bars():
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.steps_per_epoch, initial=state.batch_in_epoch,
                desc=f"epoch {state.epoch + 1}", unit="batch", leave=False,
            )  # fmt: skip

    def on_batch_end(self, state: TrainState, logs: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if state.step % 10 == 0:
                self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)
        elif self.verbose == 1 and time.monotonic() - self.last_line >= self.every_seconds:
            self.last_line = time.monotonic()
            self._line(
                f"epoch {state.epoch + 1}: batch {state.batch_in_epoch}/{state.steps_per_epoch}"
                f"  loss {logs['loss']:.4f}"
            )

    def on_evaluate(self, state: TrainState, metrics: dict[str, Any]) -> None:
        if not self.verbose:
            return
        parts = [f"epoch {metrics['epoch']:g}", f"step {metrics['step']}"]
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            if metrics.get(key) is not None:
                parts.append(f"{key} {metrics[key]:.4f}")
        parts.append(f"{metrics['seconds']:.1f} s")
        self._line("  ".join(parts))
        self.last_line = time.monotonic()

    def on_epoch_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_train_end(self, state: TrainState) -> None:
        self.on_epoch_end(state)
