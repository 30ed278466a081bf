"""Self-describing checkpoints: atomic writes, safe loading, rebuilding the model.

A checkpoint is a dict of tensors and primitives (see DESIGN.md), so ``torch.load(path,
weights_only=True)`` reads it without unpickling code. Anything else is refused.

>>> import tempfile, torch
>>> path = Path(tempfile.mkdtemp()) / "c.pt"
>>> save_checkpoint(path, {"format_version": 1, "w": torch.ones(2)})
>>> load_checkpoint(path)["w"].tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import io
import json
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CheckpointError
from cnnlab.fileio import atomic_write_bytes
from cnnlab.fileio import remove_stale_temps as remove_stale_temps  # re-export for resume
from cnnlab.models.portable import FLATTEN_ORDER

FORMAT_VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically: temp file in the same folder, fsync, rename, fsync folder.

    A crash at any moment leaves either the old file or the new one, never a partial file.
    """
    buf = io.BytesIO()
    torch.save(payload, buf)  # in memory first: torch reports a failed write as RuntimeError
    atomic_write_bytes(path, buf.getbuffer(), make_parents=True)


# The self-description every saved model carries (checkpoint payload keys, safetensors header
# entries and the export manifest): enough to rebuild and use the model without other files.
DESCRIPTION_KEYS = (
    "model_args",
    "input_shape",
    "normalizer",
    "classes",
    "dataset",
    "metrics",
    "flatten_order",
)


def save_safetensors(path: str | Path, state: dict[str, Any], description: dict[str, Any]) -> Path:
    """Write ``state`` as safetensors with ``description`` in the header (one JSON entry per key
    plus the whole as ``cnnlab_manifest``), so the weights alone rebuild the model. The header also
    holds ``layers`` (the model as plain torch layers, :mod:`cnnlab.models.portable`), so torch
    alone rebuilds it too."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    meta = {k: json.dumps(description.get(k)) for k in DESCRIPTION_KEYS}
    meta["cnnlab_manifest"] = json.dumps(description)
    meta["format_version"] = str(FORMAT_VERSION)
    meta.update(portable_metadata(description.get("model_args")))
    return atomic_write_bytes(path, save(tensors, metadata=meta), make_parents=True)


def read_safetensors(path: str | Path, *, tensors: bool = True) -> tuple[dict, dict[str, Any]]:
    """``(state, description)`` of a safetensors file; the description is ``{}`` when the header
    carries no cnnlab metadata. CheckpointError for unreadable files."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read safetensors file {path}: {exc}") from None
    if "cnnlab_manifest" in meta:
        try:
            description = json.loads(meta["cnnlab_manifest"])
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path}: corrupt cnnlab metadata ({exc})") from None
        return state, description if isinstance(description, dict) else {}
    description = {}
    for key, value in meta.items():
        try:
            description[key] = json.loads(value)
        except json.JSONDecodeError:
            description[key] = value
    return state, description if "model_args" in description else {}


def portable_metadata(model_args: dict | None) -> dict[str, str]:
    """``flatten_order`` and ``layers`` (JSON strings) for a model's safetensors metadata."""
    from cnnlab.models import create_model
    from cnnlab.models.portable import layer_specs

    meta = {"flatten_order": json.dumps(FLATTEN_ORDER)}
    if isinstance(model_args, dict) and "name" in model_args:
        meta["layers"] = json.dumps(layer_specs(create_model(**model_args)))
    return meta


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; CheckpointError for pickles or bad files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if not head:
        raise CheckpointError(f"cannot read checkpoint {path}: empty file")
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip (or a pickle, legacy)
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint "
            f"(neither a zip archive nor a pickle; starts with {head!r})"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # torch names the refused object
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled code/objects{what}, not only tensors"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = _first_line(exc).split(". This is an internal")[0]  # torch's miniz boilerplate
        if "zip archive" in reason:
            reason += " (the file is truncated or corrupt)"
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from exc
    if not isinstance(payload, dict) or "model_state" not in payload:
        raise CheckpointError(f"{path} is not a cnnlab checkpoint (no model_state)")
    return payload


def _first_line(exc: BaseException) -> str:
    """An exception's first line of text, or its type name when it has none (EOFError())."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_safetensors(path: Path) -> dict[str, Any]:
    state, description = read_safetensors(path)
    if not description:
        raise CheckpointError(f"{path} has no cnnlab metadata (model_args); cannot rebuild it")
    return {**description, "model_state": state}


def resolve_checkpoint(run_or_path: str | Path, which: str = "best") -> Path:
    """A ``.pt``/``.safetensors`` file, or a run folder (``checkpoints/<which>.pt``).

    A run-name folder holding ``version_N`` folders resolves to its latest version.
    """
    path = Path(run_or_path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"no such checkpoint or run folder: {path}")
    from cnnlab.engine.runs import versions

    for folder in (path, *reversed(versions(path))):
        for candidate in (folder / "checkpoints" / f"{which}.pt", folder / f"{which}.pt"):
            if candidate.is_file():
                return candidate
    raise CheckpointError(f"no checkpoints/{which}.pt in {path}")


def load_weights(model: torch.nn.Module, payload: dict[str, Any], source: str = "checkpoint"):
    """Load ``payload['model_state']`` into ``model``; CheckpointError naming any mismatch."""
    want = getattr(model, "cnnlab_args", {}).get("name")
    have = (payload.get("model_args") or {}).get("name")
    if want and have and want != have:
        raise CheckpointError(f"{source} holds a {have!r} model, not {want!r}")
    state = payload["model_state"]
    upgrade = getattr(model, "upgrade_state", None)
    if upgrade is not None:  # files without a flatten order come from an older layout
        state = upgrade(state, payload.get("flatten_order"))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not fit {want or type(model).__name__}: "
            f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{source}: {key} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(own[key].shape)}"
            )
    model.load_state_dict(state)


def rng_state() -> dict[str, Any]:
    """python, numpy and torch RNG states as tensors/ints (weights_only-loadable)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),
        "numpy_cached_gaussian": float(cached),
        "python": torch.tensor(internal, dtype=torch.int64),
        "python_version": int(version),
        "python_gauss": gauss,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(
        (
            "MT19937",
            keys,
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_cached_gaussian"],
        )
    )
    internal = tuple(int(v) for v in state["python"].tolist())
    random.setstate((state["python_version"], internal, state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
