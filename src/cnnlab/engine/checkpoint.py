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
import pickletools
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.engine.validate import first_line as _first_line
from cnnlab.engine.validate import loads_json
from cnnlab.errors import CheckpointError
from cnnlab.fileio import (
    MAX_READ_BYTES,
    atomic_write_bytes,
    check_regular_file,
    read_regular_file,
)
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
    "tta",
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


def portable_metadata(model_args: dict | None) -> dict[str, str]:
    """``flatten_order`` and ``layers`` (JSON strings) for a model's safetensors metadata."""
    from cnnlab.models import create_model
    from cnnlab.models.portable import layer_specs

    meta = {"flatten_order": json.dumps(FLATTEN_ORDER)}
    if isinstance(model_args, dict) and "name" in model_args:
        meta["layers"] = json.dumps(layer_specs(create_model(**model_args)))
    return meta


# What a checkpoint's pickle may name: tensors, their storages and plain containers. Everything
# torch's weights-only unpickler would also build (bytearray(10**11) among them) is refused here,
# before unpickling, with the name of what was asked for.
SAFE_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("collections", "OrderedDict"),
    ("torch", "Size"),
    ("_codecs", "encode"),  # how protocol 2 pickles short bytes values
}
MAX_ARCHIVE_ENTRIES = 100_000


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; CheckpointError for pickles or bad files.

    The file must be a regular file of bounded size; its pickle is scanned before it is
    unpickled and may name only tensors and plain containers (:data:`SAFE_GLOBALS`).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    data = read_regular_file(path, what="checkpoint", error=CheckpointError)
    if path.suffix == ".safetensors":
        return safetensors_payload(path, data)
    head = data[:2]
    if not head:
        raise CheckpointError(f"cannot read checkpoint {path}: empty file")
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip (or a pickle, legacy)
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint "
            f"(neither a zip archive nor a pickle; starts with {head!r})"
        )
    _scan_archive(data, path)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # torch names the refused object
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled code/objects{what}, not only tensors"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, KeyError, MemoryError,
            IndexError, AttributeError, OverflowError, RecursionError) as exc:  # fmt: skip
        reason = _first_line(exc).split(". This is an internal")[0]  # torch's miniz boilerplate
        if "zip archive" in reason:
            reason += " (the file is truncated or corrupt)"
        raise CheckpointError(f"cannot read checkpoint {path}: {reason[:200]}") from None
    if not isinstance(payload, dict) or "model_state" not in payload:
        raise CheckpointError(f"{path} is not a cnnlab checkpoint (no model_state)")
    return payload


def _scan_archive(data: bytes, path: Path) -> None:
    """Refuse TorchScript archives, zip bombs and pickles naming anything but tensors."""
    if data[:2] != b"PK":
        return _scan_pickles(io.BytesIO(data), path, streams=5)  # legacy: 5 pickles, then data
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path}: not a readable zip archive ({_first_line(exc)}; "
            "the file is truncated or corrupt)"
        ) from None
    if len(entries) > MAX_ARCHIVE_ENTRIES:
        raise CheckpointError(f"cannot read checkpoint {path}: {len(entries):,} archive entries")
    names = [e.filename for e in entries]
    if any("/code/" in n or n.endswith("constants.pkl") for n in names):
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is a TorchScript archive (compiled code), not a "
            "checkpoint; cnnlab loads checkpoints, .onnx and .safetensors files"
        )
    unpacked = sum(e.file_size for e in entries)
    if unpacked > MAX_READ_BYTES:
        raise CheckpointError(
            f"cannot read checkpoint {path}: it unpacks to {unpacked:,} bytes "
            f"(limit {MAX_READ_BYTES:,})"
        )
    pickles = [e for e in entries if e.filename.endswith("data.pkl")]
    if len(pickles) != 1:
        raise CheckpointError(f"cannot read checkpoint {path}: no single data.pkl in the archive")
    try:
        raw = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
    _scan_pickles(io.BytesIO(raw), path, streams=1)


def _scan_pickles(stream: io.BytesIO, path: Path, streams: int) -> None:
    """Read the pickle opcodes (nothing is executed) and refuse any global not allowed."""
    for _ in range(streams):
        try:
            for name in _pickle_globals(stream):
                if name not in SAFE_GLOBALS and not _is_storage(name):
                    raise CheckpointError(
                        f"refusing to load {path}: it contains pickled code/objects "
                        f"({'.'.join(name)}), not only tensors"
                    )
        except CheckpointError:
            raise
        except Exception as exc:  # pickletools' ValueError on a malformed stream
            raise CheckpointError(
                f"cannot read checkpoint {path}: corrupt pickle data ({_first_line(exc)[:120]})"
            ) from None


def _is_storage(name: tuple[str, str]) -> bool:
    return name[0] == "torch" and name[1].endswith("Storage") and name[1].isidentifier()


def _pickle_globals(stream: io.BytesIO):
    """The (module, name) of every GLOBAL / STACK_GLOBAL in one pickle, without running it."""
    memo: dict[int, Any] = {}
    recent: list[Any] = []  # the last values pushed (strings, or None for anything else)
    for op, arg, _pos in pickletools.genops(stream):
        if op.name == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            yield {"__builtin__": "builtins"}.get(module, module), name  # protocol 2's name
            recent.append(None)
        elif op.name == "STACK_GLOBAL":
            pair = recent[-2:]
            if len(pair) < 2 or not all(isinstance(p, str) for p in pair):
                yield ("<unknown>", "<computed name>")
            else:
                yield pair[0], pair[1]
            recent.append(None)
        elif op.name in ("MEMOIZE",):
            memo[len(memo)] = recent[-1] if recent else None
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = recent[-1] if recent else None
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(int(arg)))
        elif isinstance(arg, str) and ("UNICODE" in op.name or op.name.endswith("STRING")):
            recent.append(arg)
        elif op.name not in ("FRAME", "PROTO", "MARK"):
            recent.append(None)
        del recent[:-4]


def safetensors_payload(path: Path, data: bytes, *, require_args: bool = True) -> dict[str, Any]:
    """The payload of a safetensors file's bytes: ``model_state`` (its tensors) plus its cnnlab
    metadata, the header checked and its JSON parsed with size and depth limits. The only reader
    of what :func:`save_safetensors` writes."""
    from safetensors.torch import load

    meta = read_safetensors_metadata(data, path)
    try:
        state = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read safetensors file {path}: {_first_line(exc)}") from None
    payload: dict[str, Any] = {"model_state": state}
    if "cnnlab_manifest" in meta:  # the whole description, written by save_safetensors
        description = loads_json(meta["cnnlab_manifest"], path, "metadata 'cnnlab_manifest'")
        if not isinstance(description, dict):
            raise CheckpointError(f"{path}: metadata 'cnnlab_manifest' is not an object")
        payload.update(description)
    for key, value in meta.items():  # the per-key entries, which the checks below then see
        if key in META_JSON:
            payload[key] = loads_json(value, path, f"metadata {key!r}")
        elif key not in payload:
            payload[key] = value
    if require_args and "model_args" not in payload:
        raise CheckpointError(f"{path} has no cnnlab metadata (model_args); cannot rebuild it")
    return payload


# metadata values written as JSON by save_safetensors (others are kept as text)
META_JSON = (*DESCRIPTION_KEYS, "epoch", "step")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit


def read_safetensors_metadata(data: bytes, path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (text -> text), its header checked first."""
    if len(data) < 8:
        raise CheckpointError(f"cannot read safetensors file {path}: {len(data)} bytes, no header")
    size = int.from_bytes(data[:8], "little")
    if size > min(MAX_HEADER_BYTES, len(data) - 8):
        raise CheckpointError(
            f"cannot read safetensors file {path}: header of {size:,} bytes in a file of "
            f"{len(data):,}"
        )
    header = loads_json(data[8 : 8 + size], path, "safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"cannot read safetensors file {path}: header is not an object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{path}: safetensors metadata must map names to text")
    return meta


def resolve_checkpoint(run_or_path: str | Path, which: str = "best") -> Path:
    """A ``.pt``/``.safetensors`` file, or a run folder (``checkpoints/<which>.pt``).

    A run-name folder holding ``version_N`` folders resolves to its latest version.
    """
    path = Path(run_or_path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(f"no such checkpoint or run folder: {path}")
    if not path.is_dir():  # a device, a pipe, a socket: say what it is
        check_regular_file(path, what="checkpoint", error=CheckpointError)
    from cnnlab.engine.runs import versions

    for folder in (path, *reversed(versions(path))):
        for candidate in (folder / "checkpoints" / f"{which}.pt", folder / f"{which}.pt"):
            if candidate.is_file():
                return candidate
    raise CheckpointError(f"no checkpoints/{which}.pt in {path}")


def load_weights(model: torch.nn.Module, payload: dict[str, Any], source: str = "checkpoint"):
    """Load ``payload['model_state']`` into ``model``; CheckpointError naming any mismatch."""
    state = check_fit(model, payload, source)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:  # a dtype torch cannot copy from
        raise CheckpointError(
            f"{source}: cannot use the stored weights ({_first_line(exc)})"
        ) from None


def upgraded_state(model: torch.nn.Module, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload['model_state']`` in ``model``'s layout: files without a ``flatten_order`` come
    from an older layout that the model converts (speednet's head)."""
    upgrade = getattr(model, "upgrade_state", None)
    state = payload["model_state"]
    return upgrade(state, payload.get("flatten_order")) if upgrade is not None else state


def check_fit(
    model: torch.nn.Module, payload: dict[str, Any], source: str = "checkpoint"
) -> dict[str, Any]:
    """The payload's state in ``model``'s layout (:func:`upgraded_state`); CheckpointError unless
    it has exactly ``model``'s keys and shapes (``model`` may live on the meta device)."""
    want = getattr(model, "cnnlab_args", {}).get("name")
    have = (payload.get("model_args") or {}).get("name")
    if want and have and want != have:
        raise CheckpointError(f"{source} holds a {have!r} model, not {want!r}")
    state = upgraded_state(model, payload)
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
    return state


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
