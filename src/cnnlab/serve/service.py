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
from cnnlab.images import read_image
from cnnlab.serve.codec import feature_pngs, png_base64, sniff_format


class UnsupportedFormat(CnnlabError):
    """A decodable image in a format the server does not take (GIF, BMP, TIFF...)."""


class InferenceService:
    """Thread-safe single-image inference for the server.

    Args:
        predictor: a loaded ``cnnlab.predict.Predictor``.
        settings: a :class:`cnnlab.serve.app.ServeSettings`.
    """

    def __init__(self, predictor: Any, settings: Any) -> None:
        self.predictor = predictor
        self.settings = settings
        self._slots = threading.BoundedSemaphore(max(1, settings.max_concurrent))
        self._torch = _torch_model(predictor)
        self._conv_name, self._conv = _first_conv(self._torch)
        if self._torch is not None:
            import torch

            torch.set_num_threads(max(1, settings.torch_threads))
        self._info: dict[str, Any] | None = None

    # -- requests ---------------------------------------------------------------------------
    def predict_bytes(self, data: bytes) -> dict[str, Any]:
        """Answer one POST /predict from the encoded image bytes (runs in a worker thread)."""
        from cnnlab.predict import preprocess

        with self._slots:
            start = time.perf_counter()
            img = read_image(data, max_pixels=self.settings.max_pixels, name="upload")
            if sniff_format(data) is None:  # decodable, but not a format we promise to take
                raise UnsupportedFormat(
                    f"unsupported image format {_format_name(data)}: send PNG, JPEG or WebP"
                )
            size = int(self.predictor.input_shape[-1])
            try:
                arr = preprocess(img, style=self.predictor.style, size=size)
            except (ValueError, OSError) as exc:  # CnnlabError is a ValueError
                raise ImageError(f"cannot preprocess the upload: {exc}") from None
            probs, maps = self._run(arr)
            label = int(np.argmax(probs))
            ms = (time.perf_counter() - start) * 1000.0
        features = None
        if maps is not None:
            features = {
                "layer": self._conv_name,
                "shape": list(maps.shape),
                "maps": feature_pngs(maps, self.settings.feature_maps),
            }
        return {
            "label": label,
            "class_name": self.predictor.classes[label],
            "probability": float(probs[label]),
            "probs": [round(float(p), 6) for p in probs],
            "preprocessed": png_base64(arr),
            "ms": round(ms, 3),
            "features": features,
        }

    def _run(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities for one preprocessed (H, W) image, and the first conv maps if torch."""
        if self._conv is None:
            return np.asarray(self.predictor.predict_probs(arr[None]))[0], None
        captured: list[Any] = []
        hook = self._conv.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            probs = np.asarray(self.predictor.predict_probs(arr[None]))[0]
        finally:
            hook.remove()
        maps = captured[0][0].float().numpy() if captured else None
        return probs, maps

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

    model = getattr(predictor, "model", None)
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
    meta = dict(getattr(predictor, "metadata", None) or {})
    info: dict[str, Any] = {
        "model": meta.get("model_args", {}).get("name"),
        "model_args": meta.get("model_args"),
        "dataset": meta.get("dataset"),
        "classes": list(predictor.classes),
        "style": predictor.style,
        "input_shape": list(predictor.input_shape),
        "backend": meta.get("backend"),
        "source": meta.get("source_name"),
        "accuracy": meta.get("accuracy"),
        "summary": None,
        "params": None,
    }
    if model is not None:
        try:
            from cnnlab.models.summary import summary

            report = summary(model, input_size=tuple(predictor.input_shape))
            info["summary"] = report.to_text()
            info["params"] = int(report.total_params)
        except Exception:  # a summary is a nicety; /model must still answer
            info["params"] = int(sum(p.numel() for p in model.parameters()))
    return info
