"""Training hyperparameters: one frozen dataclass, named recipes, YAML files and overrides.

Precedence, lowest first: the dataclass defaults < a recipe (``--recipe NAME``) < a YAML file
(``--config run.yaml``) < explicit keyword overrides / command-line flags. The resolved config is
saved in every run folder and checkpoint, so a run can be repeated from it alone.

>>> cfg = TrainConfig().with_overrides(epochs=2, lr=0.01)
>>> cfg.epochs, cfg.optimizer
(2, 'adam')
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.fileio import read_regular_file

CHOICES: dict[str, tuple[str, ...]] = {
    "val_split": ("random", "last", "stratified"),
    "validate_on": ("split", "test"),
    "normalize": ("unit", "half", "meanstd", "pixel"),
    "optimizer": ("sgd", "adam", "adamw", "nadam", "rmsprop"),
    "schedule": ("constant", "step", "cosine", "one-cycle"),
    "mode": ("min", "max"),
    "device": ("auto", "cpu", "cuda"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (see the module docstring for precedence)."""

    # -- model and data
    model: str = "tutorial_cnn"  # registered model name (cnnlab models list)
    model_kwargs: dict = field(default_factory=dict)  # extra create_model arguments
    dataset: str = "mnist"  # mnist | fashion-mnist | digits | path to an image folder
    data_dir: str | None = None  # folder searched first for the dataset files
    download: bool = True  # download the dataset when it is not found locally
    limit_train: int | None = None  # use only the first N training images (quick runs)
    val_split: str = "random"  # how validation images are chosen: random | last | stratified
    val_fraction: float = 0.1  # fraction of training images held out (0 = no validation)
    val_size: int | None = None  # absolute number held out; overrides val_fraction
    validate_on: str = "split"  # split: held-out train images; test: the test set (notebook 002)
    normalize: str = "unit"  # unit [0,1] | half [-1,1] | meanstd | pixel (per-pixel standardise)
    augment: bool = False  # random shifts/rotations per batch
    augment_shift: int = 2  # max shift in pixels when augmenting
    augment_rotate: float = 0.0  # max rotation in degrees when augmenting
    augment_flip: bool = False  # also mirror half the images left-right (clothes, not digits)
    whiten: bool = False  # start the first conv as a PCA whitening of training patches (airbench)
    # -- optimisation
    epochs: int = 5  # passes over the training split
    max_steps: int | None = None  # stop after this many optimiser steps (overrides epochs)
    batch_size: int = 150  # images per optimiser step (global, over all processes)
    eval_batch_size: int = 1000  # images per forward pass when evaluating
    optimizer: str = "adam"  # sgd | adam | adamw | nadam | rmsprop
    lr: float | None = None  # peak learning rate; None = the optimiser's usual default
    momentum: float = 0.0  # sgd / rmsprop momentum
    nesterov: bool = False  # sgd Nesterov momentum (needs momentum > 0)
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    label_smoothing: float = 0.0  # cross-entropy label smoothing in [0, 1)
    schedule: str = "constant"  # learning-rate schedule: constant | step | cosine | one-cycle
    step_epochs: float = 1.0  # step schedule: multiply lr by step_gamma every this many epochs
    step_gamma: float = 0.1  # step schedule: factor per step
    warmup_fraction: float = 0.25  # one-cycle: fraction of steps spent rising to lr
    drop_last: bool = False  # drop the last incomplete training batch of each epoch
    # -- validation, early stopping, checkpoints
    eval_every: int | None = None  # validate every N optimiser steps instead of every epoch
    early_stopping: bool = False  # stop when `monitor` stops improving
    monitor: str = "val_loss"  # metric watched by early stopping and the best checkpoint
    mode: str = "min"  # min: lower is better (losses); max: higher is better (accuracy)
    patience: int = 3  # evaluations without improvement before stopping
    min_delta: float = 0.0  # smallest change that counts as an improvement
    min_epochs: int = 0  # never stop before this many evaluations
    restore_best_weights: bool = True  # end with the best weights, not the last
    checkpoint_every: int | None = None  # also save `last` every N optimiser steps (mid-epoch)
    # -- execution
    seed: int = 0  # seeds the split, shuffling, augmentation and initialisation
    deterministic: bool = False  # deterministic algorithms (bit-repeatable CPU runs)
    threads: int | None = None  # torch intra-op threads; None = number of usable cores
    device: str = "auto"  # auto | cpu | cuda
    channels_last: bool = False  # NHWC memory format (faster convolutions on CPU)
    bf16: bool = False  # bfloat16 autocast when the device supports it (fp32 master weights)
    # -- bookkeeping
    runs_dir: str = "runs"  # parent folder of run folders
    name: str | None = None  # run name; None = "<model>-<dataset>"
    recipe: str | None = None  # recipe the config started from (informational)

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """Return a copy with ``overrides`` applied, checking names and types.

        >>> TrainConfig().with_overrides(batch_size=64).batch_size
        64
        """
        values = self.to_dict()
        values.update(_checked(overrides, source="override"))
        cfg = TrainConfig(**values)
        cfg.validate()
        return cfg

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a plain dict (e.g. a checkpoint's ``config``), checking keys and types."""
        return cls().with_overrides(**_checked(values, source=source))

    @classmethod
    def from_yaml(cls, path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
        """Read a YAML mapping of field names to values on top of ``base`` (default: defaults)."""
        return (base or cls()).with_overrides(**read_yaml(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives (YAML/JSON/torch.save friendly)."""
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def run_name(self) -> str:
        """The run folder name: ``name`` or ``<model>-<dataset stem>``."""
        return self.name or f"{self.model}-{Path(self.dataset).name or 'data'}"

    def validate(self) -> None:
        """Raise ConfigError for values that are out of range or inconsistent."""
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"{key}={getattr(self, key)!r} is not one of {', '.join(allowed)}"
                )
        positive = ("epochs", "batch_size", "eval_batch_size", "max_steps", "eval_every")
        counts = ("checkpoint_every", "limit_train", "val_size", "threads")
        for key in (*positive, *counts):
            value = getattr(self, key)
            if value is not None and value < (0 if key == "val_size" else 1):
                raise ConfigError(f"{key}={value} must be positive")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction={self.val_fraction} must be in [0, 1)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"lr={self.lr} must be positive")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ConfigError("nesterov=True needs optimizer=sgd and momentum > 0")
        if "acc" in self.monitor and self.mode == "min":
            raise ConfigError(f"monitor={self.monitor!r} with mode='min' keeps the worst; use max")
        if self.patience < 0 or self.min_epochs < 0:
            raise ConfigError(
                f"patience={self.patience}, min_epochs={self.min_epochs} must be >= 0"
            )


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; ConfigError when it is not one."""
    import yaml

    try:
        # a regular file of at most 1 MB: not a pipe, a device or a runaway file
        text = read_regular_file(path, limit=1 << 20, what="config", error=ConfigError)
        data = yaml.safe_load(text.decode("utf-8", "replace"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, got {type(data).__name__}")
    return _checked(data, source=str(path))


def resolve_config(
    recipe: str | None = None, yaml_path: str | Path | None = None, **flags: Any
) -> TrainConfig:
    """Apply defaults < recipe < YAML file < flags (flags whose value is None are ignored).

    >>> resolve_config(recipe="notebook", epochs=1).epochs
    1
    """
    cfg = TrainConfig()
    if recipe is not None:
        if recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
        cfg = cfg.with_overrides(**RECIPES[recipe], recipe=recipe)
    if yaml_path is not None:
        cfg = TrainConfig.from_yaml(yaml_path, base=cfg)
    return cfg.with_overrides(**{k: v for k, v in flags.items() if v is not None})


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _checked(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Check every key is a field and every value has the field's type (ints accepted as floats)."""
    types_ = _field_types()
    out = {}
    for key, value in values.items():
        key = str(key).replace("-", "_")
        if key not in types_:
            raise ConfigError(f"{source}: unknown option {key!r} (see TrainConfig for valid names)")
        if not _type_ok(value, types_[key]):
            raise ConfigError(
                f"{source}: {key}={value!r} should be {_type_name(types_[key])}, "
                f"not {type(value).__name__}"
            )
        out[key] = float(value) if _base(types_[key]) is float and value is not None else value
    return out


def _base(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    is_union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    return args[0] if is_union and args else tp


def _type_ok(value: Any, tp: Any) -> bool:
    optional = type(None) in typing.get_args(tp)
    if value is None:
        return optional
    base = _base(tp)
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


def _type_name(tp: Any) -> str:
    name = getattr(_base(tp), "__name__", str(tp))
    return f"{name} or null" if type(None) in typing.get_args(tp) else name


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


# The loop every fast recipe shares: one-cycle schedule, batch 128, label smoothing, standardised
# pixels, NHWC + bf16 autocast, a 5% validation split evaluated in large batches.
_FAST_LOOP: dict[str, Any] = {
    "label_smoothing": 0.1,
    "schedule": "one-cycle",
    "batch_size": 128,
    "normalize": "meanstd",
    "channels_last": True,
    "bf16": True,
    "val_fraction": 0.05,
    "eval_batch_size": 2000,
}
# SGD with Nesterov momentum and weight decay, as the fastnet recipes train.
_NESTEROV: dict[str, Any] = {
    "optimizer": "sgd",
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
}

# Named starting points; flags and YAML files override any value.
RECIPES: dict[str, dict[str, Any]] = {
    # notebook 000: the tutorial net, Adam, batch 150, 5 epochs, pixels in [0, 1]
    "notebook": {
        "model": "tutorial_cnn",
        "optimizer": "adam",
        "batch_size": 150,
        "epochs": 5,
        "normalize": "unit",
    },
    # The fastest registered net to 99% MNIST test accuracy on a 2-core CPU (measured in
    # bench/train.py, README.md, "Training speed"): speednet (space-to-depth stem, two convs, flat
    # head) whose first conv starts as a PCA whitening of training patches, 267 steps (0.6 of an
    # epoch) of one-cycle Adam at lr 0.013 with batch 128 and label smoothing 0.05, NHWC and bf16
    # autocast. bench/train.py, 5 seeds, 2 threads: 99.08-99.15% test accuracy after 2.8-3.1 s
    # in 4 seeds, 98.99% in the fifth.
    "fast": {
        **_FAST_LOOP,
        "model": "speednet",
        "model_kwargs": {},
        "whiten": True,
        "optimizer": "adam",
        "lr": 0.013,
        "label_smoothing": 0.05,
        "max_steps": 267,
        "epochs": 1,
    },
    # The notebooks' tutorial net itself, trained with the fast loop: Adam one-cycle at a higher
    # peak lr (8e-3) over 380 steps of batch 128 (0.85 of an MNIST epoch), label smoothing,
    # standardised pixels, no dropout (notebook 003's Keras net has none), NHWC + bf16, each max
    # pool before its ReLU (pool_first: the same function, bit-identical weights, ~20% faster):
    # 99.07-99.12% test accuracy over seeds 0-2 in 8.6-9.0 s.
    "tutorial-fast": {
        **_FAST_LOOP,
        "model": "tutorial_cnn",
        "model_kwargs": {"dropout": 0.0, "pool_first": True},
        "optimizer": "adam",
        "lr": 0.008,
        "max_steps": 380,
        "epochs": 1,
    },
    # Best MNIST accuracy within ~5 minutes of 2-core CPU training: the default fastnet with
    # random shifts, 16 epochs of one-cycle SGD (12 epochs: 99.57% in 198 s).
    "best-mnist": {
        **_FAST_LOOP,
        **_NESTEROV,
        "model": "fastnet",
        "lr": 0.2,
        "epochs": 16,
        "augment": True,
        "augment_shift": 2,
    },
    # Best Fashion-MNIST accuracy within ~5 minutes: a wider fastnet, shifts, 14 epochs (10
    # epochs: 92.17% in 191 s).
    "best-fashion": {
        **_FAST_LOOP,
        **_NESTEROV,
        "model": "fastnet",
        "model_kwargs": {"widths": [32, 64, 128]},
        "lr": 0.1,
        "epochs": 14,
        "augment": True,
        "augment_shift": 2,
    },
}
