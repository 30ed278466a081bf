"""What one request does, without HTTP: decode -> preprocess -> infer -> encode the answer.

:class:`InferenceService` wraps a loaded :class:`cnnlab.predict.Predictor`. It uses the same
``preprocess`` as ``cnnlab predict`` and the predictor's own backend for the probabilities, so
the server and the CLI agree; for torch backends it also captures the first convolution's output
with a forward hook for the page's feature-map panel.
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
        predictor: a loaded ``cnnlab.predict.Predictor`` (any backend).
        settings: a :class:`cnnlab.serve.app.ServeSettings`.
    """

    def __init__(self, predictor: Any, settings: Any) -> None:
        self.predictor = predictor
        self.settings = settings
        self._slots = threading.BoundedSemaphore(max(1, settings.max_concurrent))
        self._torch = _torch_model(predictor)
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
            img = read_image(data, max_pixels=self.settings.max_pixels, name="upload")
            if sniff_format(data) is None:  # decodable, but not a format we promise to take
                raise UnsupportedFormat(
                    f"unsupported image format {_format_name(data)}: send PNG, JPEG or WebP"
                )
            try:
                x = self.predictor.prepare(img)  # (C, H, W): the same path as `cnnlab predict`
            except BlankImageError:
                raise
            except (ValueError, OSError) as exc:  # CnnlabError is a ValueError
                raise ImageError(f"cannot preprocess the upload: {exc}") from None
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

    def warm_up(self) -> None:
        """Run one blank image through the model so the first user does not pay for it."""
        blank = np.zeros((1, *self.predictor.input_shape), dtype=np.float32)
        self.predictor.predict_arrays(blank)

    def _capture(self, _module, _inputs, output) -> None:
        store = getattr(self._local, "maps", None)
        if store is not None:  # only requests of this service, in this thread, collect maps
            store.append(output[0].detach().float().numpy().copy())

    def _run(self, x: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """The prediction for one (C, H, W) image, and the first conv's maps for torch models."""
        self._local.maps = [] if self._has_maps else None
        try:
            pred = self.predictor.predict_arrays(x[None])[0]
            maps = self._local.maps[0] if self._local.maps else None
        finally:
            self._local.maps = None
        return pred, maps

    # -- model description ------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The GET /model document (computed once)."""
        if self._info is None:
            self._info = _describe(self.predictor, self._torch)
        return self._info


def _format_name(data: bytes) -> str:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format or "unknown"
    except Exception:  # only used for the message
        return "unknown"


def _torch_model(predictor: Any):
    """The predictor's torch module, or None for ONNX Runtime."""
    import torch

    model = getattr(predictor.backend, "model", None)
    return model if isinstance(model, torch.nn.Module) else None


def _first_conv(model) -> tuple[str | None, Any]:
    if model is None:
        return None, None
    import torch

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            return name, module
    return None, None


def _describe(predictor: Any, model) -> dict[str, Any]:
    backend = predictor.backend
    payload = getattr(getattr(backend, "loaded", None), "payload", None) or {}
    manifest = getattr(backend, "manifest", None) or {}
    args = payload.get("model_args") or manifest.get("model_args") or {}
    accuracy, split = _accuracy(payload.get("metrics") or manifest.get("metrics") or {})
    info: dict[str, Any] = {
        "model": args.get("name"),
        "model_args": args,
        "dataset": getattr(backend, "dataset", ""),
        "classes": list(predictor.classes),
        "style": predictor.style,
        "input_shape": list(predictor.input_shape),
        "backend": type(backend).__name__,
        "accuracy": accuracy,
        "accuracy_split": split,
        "params": None,
        "summary": None,
    }
    if model is not None:
        info["params"] = int(sum(p.numel() for p in model.parameters()))
        try:
            from cnnlab.models.summary import summary

            info["summary"] = summary(model, input_size=tuple(predictor.input_shape)).to_text()
        except Exception:  # a summary is a nicety; /model must still answer
            info["summary"] = None
    return info


def _accuracy(metrics: dict[str, Any]) -> tuple[float | None, str | None]:
    """The best accuracy figure a checkpoint knows: test if evaluated, else validation."""
    for key, split in (("test_accuracy", "test"), ("val_accuracy", "validation")):
        if metrics.get(key) is not None:
            return float(metrics[key]), split
    return None, None
