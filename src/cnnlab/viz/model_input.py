"""Turning RUN and IMAGE arguments into a model and one normalised input tensor.

RUN is a run folder, a checkpoint file, an already loaded ``LoadedModel`` or a bare
``nn.Module``. IMAGE is a file, ``"china"`` / ``"flower"``, ``"test:N"`` (test image N of the
run's dataset) or an array already at the model's input size with values in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError, ImageError


@dataclass
class ModelInput:
    """One image as the model sees it (``tensor``) and as a person sees it (``display``)."""

    tensor: Any  # torch float32 (1, C, H, W), normalised like the training data
    display: np.ndarray  # (H, W) or (H, W, 3) in [0, 1], the preprocessed image
    label: int | None  # true class when known (test:N)
    name: str  # what to call it in titles


@dataclass
class Run:
    """The parts of a loaded run the pictures need."""

    model: Any  # torch.nn.Module in eval mode
    normalizer: Any  # cnnlab.data.Normalizer or None (inputs used as they are)
    classes: tuple[str, ...]
    dataset: str
    input_shape: tuple[int, int, int]
    name: str
    config: dict = field(default_factory=dict)  # the training config stored in the checkpoint
    path: Path | None = None  # the checkpoint file

    def data_dir(self, override: str | Path | None = None) -> str | None:
        """Where to look for the run's dataset: the override, else where training found it."""
        return str(override) if override else self.config.get("data_dir")


def load_run(run: Any, which: str = "best") -> Run:
    """A :class:`Run` from a run folder / checkpoint path, a ``LoadedModel`` or an ``nn.Module``."""
    import torch

    if isinstance(run, Run):
        return run
    if isinstance(run, torch.nn.Module):
        args = getattr(run, "cnnlab_args", {}) or {}
        c, size = int(args.get("in_channels", 1)), args.get("input_size", 28)
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        classes = tuple(str(i) for i in range(int(args.get("num_classes", 10))))
        name = str(args.get("name", type(run).__name__))
        return Run(run.eval(), None, classes, "", (c, int(h), int(w)), name)
    if hasattr(run, "model") and hasattr(run, "normalizer"):
        loaded = run
    else:
        from cnnlab.engine.checkpoint import load_model

        loaded = load_model(run, which=which)
    args = getattr(loaded.model, "cnnlab_args", {}) or {}
    name = str(args.get("name", type(loaded.model).__name__))
    return Run(
        model=loaded.model.eval(),
        normalizer=loaded.normalizer,
        classes=tuple(loaded.classes),
        dataset=loaded.dataset,
        input_shape=tuple(loaded.input_shape),
        name=name,
        config=dict(loaded.payload.get("config") or {}),
        path=getattr(loaded, "path", None),
    )


def _from_dataset(spec: str, run: Run, data_dir: str | Path | None) -> tuple[np.ndarray, int, str]:
    from cnnlab.data import load_dataset

    try:
        index = int(spec.split(":", 1)[1])
    except ValueError:
        raise CnnlabError(f"image {spec!r}: expected test:N with an integer N") from None
    if not run.dataset:
        raise CnnlabError(f"image {spec!r}: the run does not name its dataset")
    ds = load_dataset(run.dataset, "test", data_dir=run.data_dir(data_dir))
    if not 0 <= index < len(ds):
        raise CnnlabError(f"image {spec!r}: index out of range 0..{len(ds) - 1}")
    img = ds.images[index].numpy().astype(np.float64) / 255.0  # (C, H, W)
    return img, int(ds.labels[index]), f"{run.dataset} test #{index}"


def _from_file(spec: Any, run: Run) -> np.ndarray:
    """A photo or drawing preprocessed as ``cnnlab predict`` does: (C, H, W) in [0, 1]."""
    from PIL import Image

    from cnnlab.images import SAMPLE_IMAGES, load_named_image, read_image
    from cnnlab.predict import preprocess_channels, style_for

    if isinstance(spec, str) and spec in SAMPLE_IMAGES:
        pil = Image.fromarray((load_named_image(spec) * 255 + 0.5).astype(np.uint8))
    else:
        pil = read_image(spec)
    arr = np.asarray(preprocess_channels(pil, style_for(run.dataset), run.input_shape))
    if arr.shape != tuple(run.input_shape):
        raise ImageError(
            f"image {spec}: preprocessed to {arr.shape}, the model wants {run.input_shape}"
        )
    return arr.astype(np.float64)


def load_input(image: Any, run: Run, data_dir: str | Path | None = None) -> ModelInput:
    """One image for ``run``: see the module docstring for what ``image`` may be."""
    import torch

    c, h, w = run.input_shape
    label, name = None, str(image) if not isinstance(image, np.ndarray) else "array"
    if isinstance(image, np.ndarray):
        arr = np.asarray(image, dtype=np.float64)
        arr = arr[None] if arr.ndim == 2 else arr
        if arr.shape[-2:] != (h, w) or arr.shape[0] not in (1, c):
            raise ImageError(f"image array of shape {image.shape}: the model wants {(c, h, w)}")
        arr = np.repeat(arr, c // arr.shape[0], axis=0)
    elif isinstance(image, str) and image.startswith("test:"):
        arr, label, name = _from_dataset(image, run, data_dir)
    else:
        arr = _from_file(image, run)
        name = Path(str(image)).name
    x = torch.from_numpy(np.clip(arr, 0.0, 1.0).astype(np.float32))[None]
    tensor = run.normalizer(x) if run.normalizer is not None else x
    display = arr[0] if c == 1 else np.moveaxis(arr, 0, -1)
    return ModelInput(tensor=tensor.float(), display=display, label=label, name=name)
