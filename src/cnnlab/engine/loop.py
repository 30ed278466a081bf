"""fit(): the training loop, readable on one screen, plus the state it shares with callbacks.

Order per step: forward -> loss -> backward -> optimiser -> scheduler -> callbacks. At each
evaluation point (epoch end, or every ``eval_every`` steps): evaluate -> callbacks (early
stopping, best checkpoint) -> log. ``train_seconds`` excludes evaluation time.

>>> run = fit("tutorial_cnn", "digits", epochs=1, runs_dir="/tmp/r", verbose=0)  # doctest: +SKIP
>>> run.history[-1]["val_accuracy"] > 0.5  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnlab.config import RESUMABLE, TrainConfig
from cnnlab.engine import checkpoint as ckpt
from cnnlab.engine.callbacks import Callback, EarlyStopping, ModelCheckpoint, ProgressBar
from cnnlab.engine.data_setup import PreparedData, make_loader, prepare_data
from cnnlab.engine.device import autocast, bf16_supported, pick_device, seed_everything, set_threads
from cnnlab.engine.evaluate import evaluate
from cnnlab.engine.optim import build_loss, build_optimizer, build_scheduler
from cnnlab.engine.runs import RunLog, new_run_dir
from cnnlab.engine.validate import check_model_size
from cnnlab.errors import CnnlabError, ConfigError
from cnnlab.fileio import atomic_write_text
from cnnlab.run import Run

log = logging.getLogger(__name__)


class SingleProcess:
    """The default ``dist`` object: one process. A DDP context offers the same members."""

    rank, world_size, is_main = 0, 1, True

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def barrier(self) -> None: ...

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped :func:`fit` cleanly between two batches after saving
    ``last``.

    ``run_dir`` is the folder to pass to ``fit(..., resume=run_dir)`` / ``--resume``;
    ``signal`` is the number of the signal that asked for the stop (a shell reports 128 + it).
    """

    def __init__(self, run_dir: Path, step: int, signum: int = signal.SIGINT):
        super().__init__(f"stopped at step {step}, saved {run_dir / 'checkpoints' / 'last.pt'}")
        self.run_dir, self.step, self.signal = run_dir, step, int(signum)


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite: training stopped; no checkpoint holds such weights."""

    def __init__(self, message: str, run_dir: Path, step: int):
        super().__init__(message)
        self.run_dir, self.step = run_dir, step


# Signals that ask for a clean stop: Ctrl-C, and SIGTERM from kill, docker stop, systemd and
# batch schedulers.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# In a DDP group, how often (in steps) the ranks compare their stop requests.
STOP_CHECK_STEPS = 16


@contextlib.contextmanager
def _graceful_stop(dist: Any):
    """While training, the first SIGINT or SIGTERM asks for a stop at the next batch boundary.
    Only in the main thread, and only for the signals the process does not ignore.

    One process: a second signal interrupts at once. In a DDP group the ranks agree on the
    stop (see :func:`_stop_agreed`), and further signals are ignored: torchrun relays the
    terminal's Ctrl-C to workers that already got it, and kills them itself after its
    shutdown timeout.
    """
    request: dict[str, Any] = {"stop": False, "signal": None}
    usable = threading.current_thread() is threading.main_thread()
    handled = [
        s for s in STOP_SIGNALS if usable and signal.getsignal(s) not in (signal.SIG_IGN, None)
    ]

    def handler(signum: int, frame: Any) -> None:
        if request["stop"]:
            if dist.world_size == 1:
                raise KeyboardInterrupt
            return
        request["stop"], request["signal"] = True, signum

    previous = {s: signal.signal(s, handler) for s in handled}
    try:
        yield request
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@dataclass
class TrainState:
    """Everything the loop and its callbacks share; ``save(which)`` writes a checkpoint."""

    config: TrainConfig
    model: torch.nn.Module  # possibly wrapped (DDP)
    raw_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    data: PreparedData
    loader: Any  # cnnlab.data.BatchLoader
    run_dir: Path
    dist: Any
    steps_per_epoch: int
    total_steps: int
    callbacks: list[Callback] = field(default_factory=list)
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches done in the current epoch
    step: int = 0  # optimiser steps done
    epoch_done: bool = False
    stop_training: bool = False
    train_seconds: float = 0.0
    images: int = 0  # training images processed by this rank
    history: list[dict[str, Any]] = field(default_factory=list)
    best_metrics: dict[str, Any] = field(default_factory=dict)
    accum: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "correct": 0, "n": 0})
    resumed_from: Path | None = None
    best_state: dict | None = None  # best weights of a resumed run (for restore_best_weights)
    callback_states: dict[str, Any] = field(default_factory=dict)  # of the resumed checkpoint

    @property
    def has_validation(self) -> bool:
        return self.data.val is not None and len(self.data.val.labels) > 0

    def payload(self) -> dict[str, Any]:
        return {
            "format_version": ckpt.FORMAT_VERSION,
            "model_args": model_args(self.raw_model),
            "flatten_order": ckpt.FLATTEN_ORDER,
            "model_state": {k: v.detach().cpu() for k, v in self.raw_model.state_dict().items()},
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "train_seconds": self.train_seconds,
            "images_seen": self.images,
            "accum": dict(self.accum),
            "rng_state": ckpt.rng_state(),
            "metrics": dict(self.best_metrics),
            "history": [dict(r) for r in self.history],
            "callbacks": {type(c).__name__: c.state_dict() for c in self.callbacks},
            "split": _split_tensors(self.data.split),
            "normalizer": self.data.normalizer.state_dict(),
            "classes": list(self.data.classes),
            "dataset": self.config.dataset,
            "input_shape": list(self.data.input_shape),
            "tta": self.config.tta,
        }

    def save(self, which: str) -> None:
        """Write checkpoints/<which>.pt (and best.safetensors) on the main process only.

        Weights holding NaN or infinity are never written: :class:`TrainingDiverged` instead,
        so the checkpoints on disk keep the last finite weights.
        """
        if not self.dist.is_main:
            return
        bad = _first_non_finite(self.raw_model)
        if bad is not None:
            raise _diverged(self, f"the weights became NaN or infinite ({bad})")
        payload = self.payload()
        folder = self.run_dir / "checkpoints"
        ckpt.save_checkpoint(folder / f"{which}.pt", payload)
        if which == "best":
            description = {k: payload[k] for k in ckpt.DESCRIPTION_KEYS}
            ckpt.save_safetensors(folder / "best.safetensors", payload["model_state"], description)


def _split_tensors(split: Any) -> dict[str, Any]:
    """The split as a checkpoint stores it: index tensors, which pickle as one buffer each (as
    lists, MNIST's 60,000 indices made every save 0.1 s slower); ``Split.from_dict`` reads both."""
    return {"kind": split.kind, "seed": int(split.seed), "train": torch.tensor(split.train),
            "val": torch.tensor(split.val)}  # fmt: skip


_DEFAULT = object()  # "no progress argument given": show a ProgressBar at ``verbose``


def fit(
    model: TrainConfig | str | torch.nn.Module | None = None,
    dataset: str | None = None,
    *,
    recipe: str | None = None,
    verbose: int = 1,
    progress: Any = _DEFAULT,
    callbacks: list[Callback] | tuple = (),
    resume: str | Path | None = None,
    dist: Any = None,
    **options: Any,
) -> Run:
    """Train a model on a dataset; returns the trained :class:`~cnnlab.run.Run`.

    Args:
        model: a registered model name, an ``nn.Module`` (trained in place), or a complete
            :class:`~cnnlab.config.TrainConfig` (default: the recipe's model, else
            ``tutorial_cnn``).
        dataset: ``mnist``, ``fashion-mnist``, ``digits`` or a folder of class sub-folders.
        recipe: a named starting point (``cnnlab.config.RECIPES``: ``fast``, ``notebook``...);
            ``model``, ``dataset`` and ``options`` override it.
        verbose: 1 = progress bar (plain lines when not a terminal), 2 = one line per
            evaluation, 0 = silent.
        progress: a callback drawing progress instead of the default :class:`ProgressBar`
            (None: none).
        callbacks: more :class:`~cnnlab.engine.callbacks.Callback` objects.
        resume: a run version folder whose ``checkpoints/last.pt`` is continued exactly.
        dist: a data-parallel context (:mod:`cnnlab.engine.distributed`).
        **options: any :class:`~cnnlab.config.TrainConfig` field (``epochs=1``,
            ``max_steps=100``, ``image_size=64``, ``color_mode="rgb"``...).

    Ctrl-C (SIGINT) or SIGTERM finishes the current batch, saves ``last`` and raises
    :class:`TrainingInterrupted`. A loss that becomes NaN or infinite stops training with
    :class:`TrainingDiverged`; checkpoints never hold non-finite weights.

    >>> run = fit("tutorial_cnn", "digits", epochs=1, verbose=0)  # doctest: +SKIP
    """
    dist = dist or SingleProcess()
    config, module = _resolve(model, dataset, recipe, options)
    if progress is _DEFAULT:
        progress = ProgressBar(verbose) if verbose and dist.is_main else None
    state = _setup(config, resume, dist, module)
    with _graceful_stop(dist) as interrupt:
        return _train(state, progress, callbacks, interrupt)


def _resolve(
    model: Any, dataset: str | None, recipe: str | None, options: dict[str, Any]
) -> tuple[TrainConfig, torch.nn.Module | None]:
    """The TrainConfig of a fit() call, and the module to train when one was given."""
    from cnnlab.config import resolve_config

    if isinstance(model, TrainConfig):
        if recipe is not None:
            raise ConfigError("recipe= goes with a model name, not with a complete TrainConfig")
        base, module = model, None
    else:
        module = model if isinstance(model, torch.nn.Module) else None
        name = model_args(module)["name"] if module is not None else model
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"model={model!r} is not a model name, nn.Module or TrainConfig")
        base = resolve_config(recipe=recipe, model=name)  # another model: not the recipe's kwargs
    overrides = dict(options)
    if dataset is not None:
        overrides["dataset"] = str(dataset)
    return (base.with_overrides(**overrides) if overrides else base), module


def model_args(model: torch.nn.Module) -> dict[str, Any]:
    """What rebuilds ``model``: its ``cnnlab_args`` (a plain module: just its class name)."""
    return dict(getattr(model, "cnnlab_args", None) or {"name": type(model).__name__})


def _train(state: TrainState, progress: Any, callbacks: Any, interrupt: dict) -> Run:
    config = state.config
    extra = [c for c in (*callbacks, progress) if c is not None]
    state.callbacks = _standard_callbacks(config, state.has_validation) + extra
    if state.resumed_from is not None:
        for cb in state.callbacks:
            cb.load_state_dict(state.callback_states.get(type(cb).__name__, {}) or {})
    device = next(state.raw_model.parameters()).device
    use_bf16 = config.bf16 and bf16_supported(device)
    if config.bf16 and not use_bf16:
        log.warning("bf16 requested but %s has no fast bf16: training in float32", device)
    _call(state, "on_train_begin")
    try:
        _loop(state, build_loss(config), use_bf16, interrupt)
    except TrainingDiverged:
        _call(state, "on_train_end")  # closes progress bars, draws the curves so far
        raise
    _call(state, "on_train_end")
    stopper = next((c for c in state.callbacks if isinstance(c, EarlyStopping)), None)
    best = state.run_dir / "checkpoints" / "best.pt"
    return Run(
        model=state.raw_model.eval(),
        classes=state.data.classes,
        input_shape=state.data.input_shape,
        normalizer=state.data.normalizer,
        dataset=config.dataset,
        model_args=model_args(state.raw_model),
        config=config,
        history=[dict(r) for r in state.history],
        metrics=dict(state.best_metrics),
        path=best if best.is_file() else None,
        format="checkpoint" if best.is_file() else "memory",
        run_dir=state.run_dir,
        split=state.data.split.to_dict(),
        train_seconds=state.train_seconds,
        epochs=state.step / state.steps_per_epoch,
        steps=state.step,
        images=state.images,
        stopped_early=bool(stopper and stopper.stopped_step is not None),
        bf16=use_bf16,
        tta=config.tta,
    )


def _loop(state: TrainState, loss_fn: Any, use_bf16: bool, interrupt: dict) -> None:
    """The epochs: steps, evaluation points, callbacks; ``state.train_seconds`` excludes
    evaluation. Raises TrainingInterrupted after saving ``last`` when Ctrl-C asked for a stop."""
    config, loader = state.config, state.loader
    device = next(state.raw_model.parameters()).device
    start = time.perf_counter() - state.train_seconds
    eval_seconds = 0.0
    stopping = False  # a stop signal, agreed by every rank
    while state.step < state.total_steps and not state.stop_training:
        state.epoch_done = False
        _call(state, "on_epoch_begin")
        state.model.train()
        for x, y in loader.batches(state.epoch, state.batch_in_epoch):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, use_bf16):
                logits = state.model(x)
            loss = loss_fn(logits.float(), y)
            loss_value = loss.item()
            if not math.isfinite(loss_value):  # before the step: stop, keep the finite weights
                word = "NaN" if math.isnan(loss_value) else "infinite"
                raise _diverged(state, f"the loss became {word}")
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()
            state.scheduler.step()
            state.step += 1
            state.batch_in_epoch += 1
            state.images += len(y)
            correct = (logits.detach().argmax(1) == y).sum().item()
            _accumulate(state.accum, loss_value * len(y), correct, len(y))
            state.epoch_done = state.batch_in_epoch >= state.steps_per_epoch
            state.train_seconds = time.perf_counter() - start - eval_seconds
            logs = {"loss": loss_value, "accuracy": correct / len(y), "images": len(y)}
            if _eval_now(config, state):
                eval_seconds += _evaluate_point(state, use_bf16)
            _call(state, "on_batch_end", logs)
            stopping = _stop_agreed(state.dist, interrupt, state.step)
            if state.step >= state.total_steps or state.stop_training or stopping:
                break
        unfinished = state.step < state.total_steps and not state.stop_training
        if state.epoch_done:
            state.epoch += 1
            state.batch_in_epoch = 0
            final = state.step >= state.total_steps
            if (config.eval_every is None or final) and not _just_evaluated(state):
                eval_seconds += _evaluate_point(state, use_bf16)
            _call(state, "on_epoch_end")
        elif stopping and unfinished:  # a batch boundary: `last` is consistent here
            state.train_seconds = time.perf_counter() - start - eval_seconds
            state.save("last")
        elif not unfinished:
            if not _just_evaluated(state):
                eval_seconds += _evaluate_point(state, use_bf16)
            _call(state, "on_epoch_end")
        if stopping and unfinished:  # `last` was saved above or at the epoch end
            _call(state, "on_train_end")  # closes progress bars, draws the curves so far
            raise TrainingInterrupted(state.run_dir, state.step, interrupt["signal"])
    state.train_seconds = time.perf_counter() - start - eval_seconds


def _stop_agreed(dist: Any, interrupt: dict, step: int) -> bool:
    """Whether a stop signal ends training after this step.

    In a DDP group the ranks compare their signals every :data:`STOP_CHECK_STEPS` steps (a
    1-element all-reduce, about 0.26 ms between two gloo processes on this project's CPU,
    too slow for every step) and all stop at the same step when any rank got one, so `last`
    is one consistent state and no rank waits in a collective alone.
    """
    if dist.world_size == 1:
        return interrupt["stop"]
    if step % STOP_CHECK_STEPS:
        return False
    signum = int(dist.all_reduce_max(torch.tensor([interrupt["signal"] or 0]))[0])
    if signum:
        interrupt["stop"], interrupt["signal"] = True, signum
    return bool(signum)


def _setup(
    config: TrainConfig, resume: str | Path | None, dist: Any, module: torch.nn.Module | None
) -> TrainState:
    """Seed, build data/model/optimiser, create or reopen the run folder, restore a checkpoint."""
    from cnnlab.models import create_model

    payload = None
    if resume is not None:
        payload = ckpt.load_checkpoint(Path(resume) / "checkpoints" / "last.pt")
        config = TrainConfig.from_dict(payload["config"], source=f"{resume}").with_overrides(
            **_resume_overrides(config, TrainConfig.from_dict(payload["config"]))
        )
    if config.early_stopping and config.val_fraction == 0 and config.validate_on == "split":
        raise ConfigError("early_stopping needs validation data (val_fraction > 0)")
    set_threads(config.threads)
    seed_everything(config.seed, config.deterministic)
    device = pick_device(config.device)
    data = _prepare_data_main_first(config, payload, dist)
    channels, size = data.input_shape[0], tuple(data.input_shape[1:])
    input_size = size if size[0] != size[1] else size[0]
    if module is None:
        # sized on the meta device first: options such as hidden=10**9 are refused, not allocated
        check_model_size(
            {"name": config.model, "in_channels": channels, "num_classes": len(data.classes),
             "input_size": input_size, **config.model_kwargs},
            config.model, field="its options",
        )  # fmt: skip
        model = create_model(
            config.model,
            in_channels=channels,
            num_classes=len(data.classes),
            input_size=input_size,
            **config.model_kwargs,
        )
    else:
        model = _check_module(module, channels, len(data.classes))
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    init_seconds = _whiten(model, data, device) if config.whiten and payload is None else 0.0
    optimizer = build_optimizer(model.parameters(), config)
    loader = make_loader(config, data, dist.rank, dist.world_size)
    per_epoch = max(1, loader.num_batches())
    total = config.max_steps or config.epochs * per_epoch
    scheduler = build_scheduler(optimizer, config, per_epoch, total)
    run_dir = Path(resume) if resume is not None else _new_run(config, dist)
    state = TrainState(
        config=config,
        model=dist.wrap_model(model),
        raw_model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        data=data,
        loader=loader,
        run_dir=run_dir,
        dist=dist,
        steps_per_epoch=per_epoch,
        total_steps=total,
        train_seconds=init_seconds,  # data-dependent initialisation is training time
    )
    if payload is not None:
        _restore(state, payload)
    if dist.is_main:
        atomic_write_text(run_dir / "config.yaml", config.to_yaml())
    return state


def _check_module(module: torch.nn.Module, channels: int, num_classes: int) -> torch.nn.Module:
    """A model built by the caller must fit the data (its cnnlab_args say what it was built for)."""
    args = getattr(module, "cnnlab_args", None) or {}
    for key, want in (("in_channels", channels), ("num_classes", num_classes)):
        if key in args and args[key] != want:
            raise ConfigError(
                f"the model was built with {key}={args[key]}, the dataset needs {key}={want}"
            )
    return module


WHITEN_IMAGES = 1024  # training images whose patches set the whitening filters


def _whiten(model: torch.nn.Module, data: PreparedData, device: torch.device) -> float:
    """Whiten the first conv on the first training images (the same on every DDP rank);
    returns the seconds it took."""
    from cnnlab.models.init import whiten_first_conv

    t0 = time.perf_counter()
    images = data.normalizer(data.train.images[:WHITEN_IMAGES]).to(device)
    conv = whiten_first_conv(model, images)
    log.info("whitened %s's first conv %s", type(model).__name__, tuple(conv.weight.shape))
    return time.perf_counter() - t0


def _prepare_data_main_first(config: TrainConfig, payload: dict | None, dist: Any) -> PreparedData:
    """Rank 0 finds (maybe downloads) the data first; the others wait, then read the files."""

    def prepare() -> PreparedData:
        return prepare_data(
            config,
            split_state=payload["split"] if payload else None,
            normalizer_state=payload["normalizer"] if payload else None,
        )

    if dist.is_main:
        data = prepare()
        dist.barrier()
        return data
    dist.barrier()
    return prepare()


def _resume_overrides(requested: TrainConfig, saved: TrainConfig) -> dict[str, Any]:
    """On resume only the length of training and the execution details may change: they are
    taken from ``requested`` (the CLI builds it with :func:`cnnlab.engine.runs.resume_config`)."""
    return {k: getattr(requested, k) for k in RESUMABLE}


def _new_run(config: TrainConfig, dist: Any) -> Path:
    if not dist.is_main:
        return Path(config.runs_dir) / config.run_name / "not-main"
    return new_run_dir(config.runs_dir, config.run_name)


def _restore(state: TrainState, payload: dict[str, Any]) -> None:
    ckpt.load_weights(state.raw_model, payload, source=str(state.run_dir))
    state.optimizer.load_state_dict(payload["optimizer_state"])
    state.scheduler.load_state_dict(payload["scheduler_state"])
    state.epoch, state.step = payload["epoch"], payload["step"]
    state.batch_in_epoch = payload["batch_in_epoch"]
    state.train_seconds = payload.get("train_seconds", 0.0)
    state.images = payload.get("images_seen", 0)
    state.accum = dict(payload["accum"])
    state.history = [dict(r) for r in payload["history"]]
    state.best_metrics = dict(payload.get("metrics") or {})
    state.resumed_from = state.run_dir / "checkpoints" / "last.pt"
    state.callback_states = dict(payload.get("callbacks") or {})
    for folder in (state.run_dir, state.run_dir / "checkpoints"):
        ckpt.remove_stale_temps(folder)  # left by a killed run
    best = state.run_dir / "checkpoints" / "best.pt"
    if best.is_file():
        state.best_state = ckpt.load_checkpoint(best)["model_state"]
    ckpt.set_rng_state(payload["rng_state"])


def _standard_callbacks(config: TrainConfig, has_validation: bool) -> list[Callback]:
    out: list[Callback] = []
    if config.early_stopping:
        out.append(
            EarlyStopping(
                config.monitor,
                config.mode,
                config.patience,
                config.min_delta,
                config.min_epochs,
                config.restore_best_weights,
            )
        )
    monitor = config.monitor if has_validation else "train_loss"
    mode = config.mode if has_validation else "min"
    delta = config.min_delta if config.early_stopping and has_validation else 0.0
    out.append(ModelCheckpoint(monitor, mode, config.checkpoint_every, delta))
    return out


def _first_non_finite(model: torch.nn.Module) -> str | None:
    """The name of the first parameter or buffer holding NaN or infinity, else None."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def _diverged(state: TrainState, what: str) -> TrainingDiverged:
    """The one-line stop message: where it happened and which checkpoint is still good."""
    folder = state.run_dir / "checkpoints"
    kept = [folder / f"{w}.pt" for w in ("last", "best") if (folder / f"{w}.pt").is_file()]
    if kept:
        good = f"the last finite weights are in {', '.join(str(p) for p in kept)}"
    else:
        good = "no checkpoint was written (none had finite weights)"
    return TrainingDiverged(
        f"training stopped at step {state.step + 1}: {what}; {good}; try a lower learning rate",
        state.run_dir,
        state.step,
    )


def _accumulate(accum: dict[str, float], loss_sum: float, correct: int, n: int) -> None:
    accum["loss"] += loss_sum
    accum["correct"] += correct
    accum["n"] += n


def _eval_now(config: TrainConfig, state: TrainState) -> bool:
    return config.eval_every is not None and state.step % config.eval_every == 0


def _just_evaluated(state: TrainState) -> bool:
    return bool(state.history) and state.history[-1]["step"] == state.step


def _evaluate_point(state: TrainState, use_bf16: bool) -> float:
    """Validate, append a history row, run ``on_evaluate`` hooks; returns seconds spent."""
    t0 = time.perf_counter()
    sums = torch.tensor([state.accum["loss"], state.accum["correct"], state.accum["n"]])
    sums = state.dist.all_reduce_sum(sums.double())
    n = max(1.0, float(sums[2]))
    row: dict[str, Any] = {
        "epoch": round(state.step / state.steps_per_epoch, 4),
        "step": state.step,
        "train_loss": float(sums[0]) / n,
        "train_accuracy": float(sums[1]) / n,
        "val_loss": None,
        "val_accuracy": None,
        "lr": state.optimizer.param_groups[0]["lr"],
        "seconds": round(state.train_seconds, 3),
    }
    if state.has_validation:
        result = evaluate(
            state.raw_model,
            state.data.val,
            state.data.normalizer,
            state.config.eval_batch_size,
            bf16=use_bf16,
            channels_last=state.config.channels_last,
            tta=state.config.tta,
        )
        # DDP: every rank validates the same weights; use the ranks' mean so that all take the
        # same early-stopping decision even where evaluation is not bit-repeatable (GPUs).
        val = torch.tensor([result.loss, result.accuracy], dtype=torch.float64)
        val = state.dist.all_reduce_sum(val) / state.dist.world_size
        row["val_loss"], row["val_accuracy"] = float(val[0]), float(val[1])
    state.accum = {"loss": 0.0, "correct": 0, "n": 0}
    state.history.append(row)
    _call(state, "on_evaluate", row)
    if state.dist.is_main:
        RunLog(state.run_dir, state.history).flush()
    return time.perf_counter() - t0


def _call(state: TrainState, hook: str, *args: Any) -> None:
    for cb in state.callbacks:
        getattr(cb, hook)(state, *args)
