"""Reading exported models without pickle: ONNX Runtime sessions and safetensors + manifest.

ONNX files are opened by ONNX Runtime alone, safetensors weights are plain tensors and the
manifest is JSON; torch models are rebuilt with ``create_model(**model_args)``. The run object
(:mod:`cnnlab.run`) uses these helpers to load exported files; nothing here predicts.

>>> session = onnx_session("model.onnx")  # doctest: +SKIP
>>> onnx_manifest(session, "model.onnx")["classes"][:3]  # doctest: +SKIP
['0', '1', '2']
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.engine.onnx_check import check_onnx_model
from cnnlab.engine.validate import (
    MAX_JSON_CHARS,
    check_payload,
    check_text,
    loads_json,
    rebuild_model,
)
from cnnlab.errors import CheckpointError, CnnlabError
from cnnlab.fileio import read_regular_file

MANIFEST_KEYS = ("model_args", "input_shape", "normalizer", "classes")


def check_manifest(manifest: Any, source: Path) -> dict[str, Any]:
    """Validate a manifest's required keys; CheckpointError naming ``source`` otherwise."""
    if not manifest:
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
    return manifest


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a JSON manifest written by ``cnnlab export --format safetensors``."""
    path = Path(path)
    try:
        text = read_regular_file(path, limit=MAX_JSON_CHARS, what="manifest", error=CheckpointError)
    except FileNotFoundError:
        raise CheckpointError(f"manifest not found: {path}") from None
    return check_manifest(loads_json(text, path), path)


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
    from cnnlab.engine.checkpoint import safetensors_payload

    path = Path(path)
    manifest = None  # from the sidecar, else from the weights file's own header
    if path.suffix == ".safetensors":
        weights = Path(weights or path)
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            manifest = read_manifest(sidecar)
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
    if manifest is not None:
        _check_sha256(manifest, weights, data)
    payload = safetensors_payload(weights, data, require_args=False)
    state = payload.pop("model_state")
    if manifest is None:
        manifest = check_manifest(payload if "model_args" in payload else {}, weights)
        _check_sha256(manifest, weights, data)
    order = manifest.get("flatten_order")  # absent: written before it was recorded
    payload = {"model_state": state, "model_args": manifest["model_args"], "flatten_order": order}
    return rebuild_model(payload, weights), manifest


def _check_sha256(manifest: dict[str, Any], weights: Path, data: bytes) -> None:
    expected = manifest.get("weights_sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"{weights} does not match the sha256 in its manifest")


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


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session for ``path`` (``threads`` intra-op threads if given)."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError:
        raise CheckpointError(
            "running .onnx models needs onnxruntime: pip install 'cnnlab[export]'"
        ) from None
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"ONNX model not found: {path}")
    # operators, external data and weights checked before ONNX Runtime sees the file
    data = read_regular_file(path, what="ONNX model", error=CheckpointError)
    check_onnx_model(data, path)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        first = str(exc).splitlines()[0][:200]
        raise CheckpointError(f"cannot load ONNX model {path}: {first}") from None


def onnx_manifest(session: Any, path: str | os.PathLike) -> dict[str, Any]:
    """The manifest cnnlab export stored in an ONNX model's metadata."""
    meta = session.get_modelmeta().custom_metadata_map
    if "cnnlab_manifest" not in meta:
        raise CheckpointError(f"{path} has no cnnlab metadata; export it with cnnlab")
    return check_manifest(loads_json(meta["cnnlab_manifest"], path, "cnnlab metadata"), Path(path))


class InferenceTimeout(CnnlabError):
    """An ONNX Runtime run went past its time limit and was stopped."""


def onnx_logits(
    session: Any,
    x: np.ndarray,
    normalizer_state: dict[str, Any],
    time_limit: float | None = None,
) -> np.ndarray:
    """float32 (N, C, H, W) images in [0, 1] -> logits, normalised with NumPy first.

    ``time_limit``: seconds the run may take. ONNX Runtime then stops it at its next node
    (``RunOptions.terminate``; a node that has started runs to its end) and
    :class:`InferenceTimeout` is raised; the session stays usable.
    """
    batch = np.ascontiguousarray(normalize_numpy(x, normalizer_state))
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
    if time_limit is None:
        return session.run([name_out], {name_in: batch})[0]
    import onnxruntime as ort

    options = ort.RunOptions()
    timer = threading.Timer(time_limit, setattr, (options, "terminate", True))
    timer.daemon = True
    timer.start()
    try:
        return session.run([name_out], {name_in: batch}, options)[0]
    except Exception:  # onnxruntime raises its own types; ours only when the timer stopped it
        if not options.terminate:
            raise
        raise InferenceTimeout(
            f"the ONNX model ran longer than {time_limit:g} s and was stopped"
        ) from None
    finally:
        timer.cancel()
