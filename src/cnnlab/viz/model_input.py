"""Turning RUN and IMAGE arguments into a model and one normalised input tensor.

RUN is a :class:`cnnlab.run.Run`, anything :func:`cnnlab.load` opens, or a bare ``nn.Module``
(turned into a Run by :func:`cnnlab.run.as_run`). IMAGE is a
file, ``"china"`` / ``"flower"``, ``"test:N"`` (test image N of the run's dataset), a PIL image,
or an array / tensor (at the model's input size it is used as it is, see ``Run.predict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError, ImageError
from cnnlab.run import Run


@dataclass
class ModelInput:
    """One image as the model sees it (``tensor``) and as a person sees it (``display``)."""

    tensor: Any  # torch float32 (1, C, H, W), normalised like the training data
    display: np.ndarray  # (H, W) or (H, W, 3) in [0, 1], the preprocessed image
    label: int | None  # true class when known (test:N)
    name: str  # what to call it in titles


def _from_dataset(spec: str, run: Run, data_dir: str | Path | None) -> tuple[np.ndarray, int, str]:
    try:
        index = int(spec.split(":", 1)[1])
    except ValueError:
        raise CnnlabError(f"image {spec!r}: expected test:N with an integer N") from None
    if not run.dataset:
        raise CnnlabError(f"image {spec!r}: the run does not name its dataset")
    from cnnlab.engine.data_setup import load_split

    c, h, w = run.input_shape
    ds = load_split(run.dataset, "test", run.data_dir(data_dir), image_size=(h, w), channels=c)
    if not 0 <= index < len(ds):
        raise CnnlabError(f"image {spec!r}: index out of range 0..{len(ds) - 1}")
    img = ds.images[index].numpy().astype(np.float64) / 255.0  # (C, H, W)
    return img, int(ds.labels[index]), f"{run.dataset} test #{index}"


def _from_file(spec: Any, run: Run) -> np.ndarray:
    """A photo or drawing preprocessed as ``cnnlab predict`` does: (C, H, W) in [0, 1]."""
    from PIL import Image

    from cnnlab.images import SAMPLE_IMAGES, load_named_image, read_image

    if isinstance(spec, str) and spec in SAMPLE_IMAGES:
        pil = Image.fromarray((load_named_image(spec) * 255 + 0.5).astype(np.uint8))
    elif isinstance(spec, Image.Image):
        pil = spec
    else:
        pil = read_image(spec)
    arr = np.asarray(run.prepare(pil))
    if arr.shape != tuple(run.input_shape):
        raise ImageError(
            f"image {spec}: preprocessed to {arr.shape}, the model wants {run.input_shape}"
        )
    return arr.astype(np.float64)


def load_input(image: Any, run: Run, data_dir: str | Path | None = None) -> ModelInput:
    """One image for ``run``: see the module docstring for what ``image`` may be."""
    import torch

    c, h, w = run.input_shape
    label = None
    if isinstance(image, str) and image.startswith("test:"):
        arr, label, name = _from_dataset(image, run, data_dir)
    elif isinstance(image, str | Path):
        arr, name = _from_file(image, run), Path(str(image)).name
    else:
        arr, name = run.prepare(image).astype(np.float64), type(image).__name__
        if arr.shape[0] != c:
            raise ImageError(f"image of shape {arr.shape}: the model wants {(c, h, w)}")
    x = torch.from_numpy(np.clip(arr, 0.0, 1.0).astype(np.float32))[None]
    tensor = run.normalizer(x) if run.normalizer is not None else x
    display = arr[0] if c == 1 else np.moveaxis(arr, 0, -1)
    return ModelInput(tensor=tensor.float(), display=display, label=label, name=name)
