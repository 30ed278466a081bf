"""What one request does, without HTTP: decode -> preprocess -> infer -> encode the answer.

:class:`InferenceService` wraps a loaded :class:`cnnlab.run.Run`. It uses the run's own
``prepare`` and ``predict_arrays``, as ``cnnlab predict`` does, so the server and the CLI agree;
for torch models it also captures the first convolution's output with a forward hook for the
page's feature-map panel.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError, ImageError
from cnnlab.images import BlankImageError, read_image
from cnnlab.serve.codec import feature_grid, png_base64, sniff_format


class UnsupportedFormat(CnnlabError):
    """A decodable image in a format the server does not take (GIF, BMP, TIFF...)."""


class InferenceService:
    """Thread-safe single-image inference for the server.

    Args:
        run: a loaded :class:`cnnlab.run.Run` (any format).
        settings: a :class:`cnnlab.serve.app.ServeSettings`.
    """

    def __init__(self, run: Any, settings: Any) -> None:
        self.run = run
        self.settings = settings
        self._slots = threading.BoundedSemaphore(max(1, settings.max_concurrent))
        self._torch = _torch_model(run)
        self._conv_name, conv = _first_conv(self._torch)
        self._local = threading.local()  # each worker thread captures its own request's maps
        if conv is not None:
            conv.register_forward_hook(self._capture)
        self._has_maps = conv is not None
        self._info: dict[str, Any] | None = None

    # -- requests ---------------------------------------------------------------------------
    def predict_bytes(self, data: bytes) -> dict[str, Any]:
        """Answer one POST /predict from the encoded image bytes (runs in a worker thread)."""
        with self._slots:
            start = time.perf_counter()
            x = self.prepare_bytes(data)
            pred, maps = self._run(x)
            ms = (time.perf_counter() - start) * 1000.0
        features = None
        if maps is not None:
            shown = maps[: self.settings.feature_maps]
            grid, rows, cols = feature_grid(shown)
            features = {
                "layer": self._conv_name,
                "shape": list(maps.shape),
                "grid": grid,
                "rows": rows,
                "cols": cols,
            }
        return {
            "label": pred.label,
            "class_name": pred.class_name,
            "probability": pred.probability,
            "probs": [round(float(p), 6) for p in pred.probs],
            "preprocessed": png_base64(x[0] if x.shape[0] == 1 else x.mean(axis=0)),
            "ms": round(ms, 3),
            "features": features,
        }

    def prepare_bytes(self, data: bytes) -> np.ndarray:
        """Encoded image bytes -> the (C, H, W) array in [0, 1] the network sees."""
        img = read_image(data, max_pixels=self.settings.max_pixels, name="upload")
        if sniff_format(data) is None:  # decodable, but not a format we promise to take
            raise UnsupportedFormat(
                f"unsupported image format {_format_name(data)}: send PNG, JPEG or WebP"
            )
        try:
            return self.run.prepare(img)  # (C, H, W): the same path as `cnnlab predict`
        except BlankImageError:
            raise
        except (ValueError, OSError) as exc:  # CnnlabError is a ValueError
            raise ImageError(f"cannot preprocess the upload: {exc}") from None

    def warm_up(self) -> None:
        """Run one blank image through the model so the first user does not pay for it."""
        blank = np.zeros((1, *self.run.input_shape), dtype=np.float32)
        self.run.predict_arrays(blank)

    def _capture(self, _module, _inputs, output) -> None:
        store = getattr(self._local, "maps", None)
        if store is not None:  # only requests of this service, in this thread, collect maps
            store.append(output[0].detach().float().numpy().copy())

    def _run(self, x: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """The prediction for one (C, H, W) image, and the first conv's maps for torch models."""
        self._local.maps = [] if self._has_maps else None
        try:
            limit = self.settings.inference_timeout
            pred = self.run.predict_arrays(x[None], time_limit=limit)[0]
            maps = self._local.maps[0] if self._local.maps else None
        finally:
            self._local.maps = None
        return pred, maps

    # -- model description ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The GET /model document (computed once)."""
        if self._info is None:
            self._info = _describe(self.run, self._torch)
        return self._info


def _format_name(data: bytes) -> str:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format or "unknown"
    except Exception:  # only used for the message
        return "unknown"


def _torch_model(run: Any):
    """The run's torch module, or None for ONNX Runtime."""
    import torch

    return run.model if isinstance(run.model, torch.nn.Module) else None


def _first_conv(model) -> tuple[str | None, Any]:
    if model is None:
        return None, None
    import torch

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            return name, module
    return None, None


def _describe(run: Any, model) -> dict[str, Any]:
    accuracy, split = _accuracy(run.metrics)
    info: dict[str, Any] = {
        "model": run.model_args.get("name"),
        "model_args": run.model_args,
        "dataset": run.dataset,
        "classes": list(run.classes),
        "style": run.style,
        "input_shape": list(run.input_shape),
        "format": run.format,
        "accuracy": accuracy,
        "accuracy_split": split,
        "params": None,
        "summary": None,
    }
    if model is not None:
        info["params"] = int(sum(p.numel() for p in model.parameters()))
        try:
            from cnnlab.models.summary import summary

            info["summary"] = summary(model, input_size=tuple(run.input_shape)).to_text()
        except Exception:  # a summary is a nicety; /model must still answer
            info["summary"] = None
    return info


def _accuracy(metrics: dict[str, Any]) -> tuple[float | None, str | None]:
    """The best accuracy figure a checkpoint knows: test if evaluated, else validation."""
    for key, split in (("test_accuracy", "test"), ("val_accuracy", "validation")):
        if metrics.get(key) is not None:
            return float(metrics[key]), split
    return None, None
