"""Evaluate a saved run on its test set: the data side of ``cnnlab evaluate``.

Pictures are drawn by the caller (the CLI) from the returned arrays; this module only computes.

>>> report = evaluate_checkpoint("runs/tutorial_cnn-mnist/version_0")  # doctest: +SKIP
>>> report.result.accuracy  # doctest: +SKIP
0.9893
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.engine.checkpoint import LoadedModel, load_model
from cnnlab.engine.data_setup import is_folder_dataset, load_split
from cnnlab.engine.device import bf16_supported
from cnnlab.engine.evaluate import EvalResult, evaluate
from cnnlab.errors import CheckpointError, DataError
from cnnlab.fileio import atomic_write_text


@dataclass
class EvalReport:
    result: EvalResult
    loaded: LoadedModel
    images: np.ndarray  # uint8 (N, C, H, W) of the evaluated set, for the error grid
    classes: tuple[str, ...]
    dataset_label: str
    out: Path

    @property
    def model_name(self) -> str:
        return str(self.loaded.payload.get("model_args", {}).get("name", "model"))

    def summary(self) -> dict[str, Any]:
        """The ``--json`` object: accuracy is a fraction in [0, 1]."""
        return {
            "checkpoint": str(self.loaded.path),
            "dataset": self.dataset_label,
            "images": len(self.result.labels),
            "accuracy": self.result.accuracy,
            "loss": self.result.loss,
            "per_class": self.result.per_class,
            "out": str(self.out),
        }

    def write_json(self) -> Path:
        data = {**self.summary(), "confusion": self.result.confusion.tolist()}
        return atomic_write_text(self.out / "metrics.json", json.dumps(data, indent=1))

    def text(self) -> str:
        """A human-readable table: overall numbers then one line per class."""
        r = self.result
        lines = [
            f"{self.model_name} on {self.dataset_label} ({len(r.labels)} images): "
            f"accuracy {r.accuracy:.2%}, loss {r.loss:.4f}",
            f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
        ]
        for name, m in r.per_class.items():
            lines.append(
                f"{name[:13]:<14}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                f"{m['f1']:>10.4f}{m['support']:>9d}"
            )
        return "\n".join(lines)


def evaluate_checkpoint(
    run_or_path: str | Path,
    dataset: str | None = None,
    data_dir: str | None = None,
    which: str = "best",
    out: str | Path | None = None,
    batch_size: int = 1000,
    fast: bool = False,
) -> EvalReport:
    """Evaluate a run's checkpoint on the test split (for image folders: the run's val split).

    ``fast``: bf16 (where the CPU has it) + channels_last through a fused TorchScript graph
    (:class:`~cnnlab.engine.evaluate.FusedInference`) instead of eager fp32."""
    loaded = load_model(run_or_path, which)
    name = dataset or loaded.dataset
    config = loaded.payload.get("config") or {}
    if is_folder_dataset(name):
        data = load_split(name, "test", data_dir)
        split = loaded.payload.get("split") or {}
        if dataset is None and split.get("val"):  # the run's own folder: its held-out images
            data = data.subset(np.asarray(split["val"], dtype=np.int64))
            label = f"{name} (validation split)"
        else:
            label = f"{name} (all images)"
    else:
        data = load_split(name, "test", data_dir or config.get("data_dir"))
        label = f"{name} test"
    if tuple(data.images.shape[1:]) != tuple(loaded.input_shape):
        raise DataError(
            f"{name} images are {tuple(data.images.shape[1:])}, "
            f"the model expects {tuple(loaded.input_shape)}"
        )
    if len(loaded.classes) != len(data.classes):  # scores and labels must index one class list
        raise DataError(
            f"{loaded.path} has {len(loaded.classes):,} outputs but {label} has "
            f"{len(data.classes):,} classes: evaluate it on the data set it was trained for"
        )
    with torch.inference_mode():
        result = evaluate(
            loaded.model, data, loaded.normalizer, batch_size,
            bf16=fast and bf16_supported(torch.device("cpu")), channels_last=fast, fuse=fast,
        )  # fmt: skip
    if not math.isfinite(result.loss):  # NaN in --json output is not JSON; say what happened
        raise CheckpointError(
            f"{loaded.path}: the model returned NaN or infinite scores on {label}"
        )
    return EvalReport(
        result=result,
        loaded=loaded,
        images=data.images.numpy(),
        classes=tuple(data.classes),
        dataset_label=label,
        out=_out_dir(loaded.path, out),
    )


def _out_dir(checkpoint: Path, out: str | Path | None) -> Path:
    if out is not None:
        folder = Path(out)
    elif checkpoint.parent.name == "checkpoints":
        folder = checkpoint.parent.parent / "evaluation"
    else:
        folder = checkpoint.parent / f"{checkpoint.stem}-evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
