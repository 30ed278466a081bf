"""Prediction backends for exported models: ONNX Runtime and safetensors + JSON manifest.

Both read only data: ONNX files are opened by ONNX Runtime alone, safetensors weights are plain
tensors, and the manifest is JSON; the model is rebuilt with ``create_model(**model_args)``. Each
backend exposes the same small surface as a checkpoint-backed predictor: ``manifest`` (model
args, input shape, normaliser state, classes, dataset, style), ``normalizer`` and
``logits(x)`` for a float32 batch (B, C, H, W) in [0, 1] (normalised inside), like
``cnnlab.predict.TorchBackend``. :func:`register` adds them to ``Predictor.load``'s registry.

>>> backend = OnnxBackend("model.onnx")  # doctest: +SKIP
>>> backend.logits(x).shape  # doctest: +SKIP
(1, 10)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.engine.onnx_check import check_onnx_model, onnx_metadata
from cnnlab.engine.validate import (
    MAX_JSON_CHARS,
    check_payload,
    check_text,
    first_line,
    loads_json,
    rebuild_model,
)
from cnnlab.errors import CheckpointError
from cnnlab.fileio import check_regular_file, read_regular_file

MANIFEST_KEYS = ("model_args", "input_shape", "normalizer", "classes")


def _check_manifest(manifest: Any, source: Path) -> dict[str, Any]:
    if manifest is None:
        raise CheckpointError(f"{source}: no manifest beside it ({source.stem}.json) or inside it")
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{source}: the manifest is not a JSON object")
    missing = [k for k in MANIFEST_KEYS if k not in manifest]
    if missing:
        raise CheckpointError(f"{source}: manifest lacks {', '.join(missing)}")
    if not isinstance(manifest["model_args"], dict) or "name" not in manifest["model_args"]:
        raise CheckpointError(f"{source}: manifest model_args has no model name")
    manifest.update(check_payload(manifest, source))  # types, bounds, classes vs outputs
    manifest["style"] = check_text(manifest.get("style"), source, "style")
    if not manifest.get("style"):
        from cnnlab.predict import style_for

        manifest["style"] = style_for(manifest["dataset"])
    return manifest


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a JSON manifest written by ``cnnlab export --format safetensors``."""
    path = Path(path)
    try:
        text = read_regular_file(path, limit=MAX_JSON_CHARS, what="manifest", error=CheckpointError)
    except FileNotFoundError:
        raise CheckpointError(f"manifest not found: {path}") from None
    return _check_manifest(loads_json(text, path), path)


def _embedded_manifest(weights: Path) -> dict[str, Any] | None:
    """The manifest stored in the safetensors header (ours, or the engine's per-key metadata)."""
    from cnnlab.engine.checkpoint import META_JSON, read_safetensors_metadata

    data = read_regular_file(weights, what="safetensors file", error=CheckpointError)
    meta = read_safetensors_metadata(data, weights)
    if "cnnlab_manifest" in meta:
        return loads_json(meta["cnnlab_manifest"], weights, "metadata 'cnnlab_manifest'")
    if "model_args" in meta:
        return {
            key: loads_json(value, weights, f"metadata {key!r}") if key in META_JSON else value
            for key, value in meta.items()
        }
    return None


def load_manifest_model(
    path: str | os.PathLike, weights: str | os.PathLike | None = None
) -> tuple[Any, dict[str, Any]]:
    """Rebuild a torch model from ``model.safetensors`` + ``model.json`` without pickle.

    Args:
        path: the manifest (``.json``) or the weights (``.safetensors``, manifest beside it or,
            failing that, embedded in the file's header).
        weights: the weights file when not the manifest's ``weights`` entry.

    Returns:
        ``(model in eval mode, manifest)``.
    """
    from safetensors.torch import load

    path = Path(path)
    if path.suffix == ".safetensors":
        weights = Path(weights or path)
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            manifest = read_manifest(sidecar)
        else:
            manifest = _check_manifest(_embedded_manifest(weights), weights)
    else:
        manifest = read_manifest(path)
        name = manifest.get("weights", path.stem + ".safetensors")
        if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
            # a downloaded manifest must not point the loader anywhere else on the disk
            raise CheckpointError(f"{path}: 'weights' must be a file name beside it, got {name!r}")
        weights = Path(weights or path.with_name(name))
    if not weights.exists():
        raise CheckpointError(f"weights not found: {weights} (named by the manifest {path})")
    data = read_regular_file(weights, what="safetensors file", error=CheckpointError)
    expected = manifest.get("weights_sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{weights} does not match the sha256 in its manifest")
    try:
        state = load(data)
    except Exception as exc:
        reason = first_line(exc)
        raise CheckpointError(f"cannot read safetensors file {weights}: {reason}") from None
    model = rebuild_model({"model_state": state, "model_args": manifest["model_args"]}, weights)
    return model, manifest


def normalize_numpy(x: np.ndarray, state: dict[str, Any]) -> np.ndarray:
    """Apply a Normalizer state to images in [0, 1] with NumPy (no torch needed for ONNX).

    >>> normalize_numpy(np.array([[[[0.0, 1.0]]]]), {"kind": "half"}).tolist()
    [[[[-1.0, 1.0]]]]
    """
    x = np.asarray(x, dtype=np.float32)
    kind = state.get("kind", "unit")
    if kind == "unit":
        return x
    if kind == "half":
        return (x - np.float32(0.5)) / np.float32(0.5)
    if kind in ("meanstd", "pixel"):
        mean = np.asarray(state["mean"], dtype=np.float64)
        std = np.asarray(state["std"], dtype=np.float64)
        # The same fused form as cnnlab.data.Normalizer: x * (1/std) + (-mean/std)
        return (x * (1.0 / std).astype(np.float32) + (-mean / std).astype(np.float32)).astype(
            np.float32
        )
    raise CheckpointError(f"unknown normalizer kind {kind!r} in the model's manifest")


class _ManifestInfo:
    """The Backend protocol's descriptive attributes, read from a manifest."""

    manifest: dict[str, Any]

    def _describe(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.classes = tuple(str(c) for c in manifest["classes"])
        self.input_shape = tuple(int(s) for s in manifest["input_shape"])
        self.dataset = str(manifest.get("dataset") or "")
        self.style = manifest.get("style")


class ManifestBackend(_ManifestInfo):
    """A model rebuilt from safetensors + manifest, run eagerly by PyTorch."""

    kind = "safetensors"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.model, manifest = load_manifest_model(path)
        self._describe(manifest)
        from cnnlab.data import Normalizer

        self.normalizer = Normalizer.from_state(manifest.get("normalizer") or {"kind": "unit"})

    def logits(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, C, H, W) images in [0, 1] -> logits."""
        import torch

        batch = self.normalizer(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        with torch.inference_mode():
            return self.model(batch).float().numpy()


class OnnxBackend(_ManifestInfo):
    """An exported ``.onnx`` file run by ONNX Runtime (its metadata holds the manifest)."""

    kind = "onnx"
    model = None  # no torch module: feature maps are not available

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ModuleNotFoundError:
            raise CheckpointError(
                "running .onnx models needs onnxruntime: pip install 'cnnlab[export]'"
            ) from None
        self.path = Path(path)
        if not self.path.exists():
            raise CheckpointError(f"ONNX model not found: {self.path}")
        # operators, external data and weights checked before ONNX Runtime sees the file
        data = read_regular_file(self.path, what="ONNX model", error=CheckpointError)
        meta = onnx_metadata(check_onnx_model(data, self.path))
        if "cnnlab_manifest" not in meta:
            raise CheckpointError(f"{self.path} has no cnnlab metadata; export it with cnnlab")
        manifest = loads_json(meta["cnnlab_manifest"], self.path, "cnnlab metadata")
        self._describe(_check_manifest(manifest, self.path))
        self.session = self._session(ort, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def _session(self, ort, threads: int | None):
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            first = str(exc).splitlines()[0][:200]
            raise CheckpointError(f"cannot load ONNX model {self.path}: {first}") from None

    def set_threads(self, threads: int) -> None:
        """Reopen the session with ``threads`` intra-op threads (the server uses 1 per request)."""
        import onnxruntime as ort

        self.session = self._session(ort, threads)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, C, H, W) images in [0, 1] -> logits."""
        batch = np.ascontiguousarray(normalize_numpy(x, self.manifest["normalizer"]))
        return self.session.run([self.output_name], {self.input_name: batch})[0]


def load_safetensors(path: Path):
    """``.safetensors``: with a manifest beside it (``cnnlab export``) or our embedded one, a
    :class:`ManifestBackend`; otherwise a run's ``best.safetensors`` via the checkpoint loader."""
    path = Path(path)
    check_regular_file(path, what="safetensors file", error=CheckpointError)
    if path.with_suffix(".json").exists() or _has_cnnlab_manifest(path):
        return ManifestBackend(path)
    from cnnlab.predict import TorchBackend

    return TorchBackend.load(path)


def _has_cnnlab_manifest(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return "cnnlab_manifest" in (f.metadata() or {})
    except Exception:  # unreadable files get their error from the loader that follows
        return False


def register() -> None:
    """Teach ``cnnlab.predict.Predictor.load`` the exported formats (idempotent)."""
    from cnnlab.predict import register_backend

    register_backend(".onnx", OnnxBackend)
    register_backend(".json", ManifestBackend)
    register_backend(".safetensors", load_safetensors)
