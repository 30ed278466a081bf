"""Checks on model files from strangers, run before anything is built from them.

A checkpoint, a safetensors header, a manifest or an ONNX file says how big the network is
(``model_args``), what it outputs (``classes``) and how to scale its input (``normalizer``).
Every field is checked here for type, length and range, and the network is first built on
PyTorch's ``meta`` device (shapes only, no memory) and compared with the stored tensors, so a
1 MB file cannot ask for gigabytes. Each refusal is one :class:`CheckpointError` line naming
the file and the field.

>>> check_classes(["a", "b"], 2, "m.pt")
('a', 'b')
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from cnnlab.errors import CheckpointError, CnnlabError

# Bounds on what a model file may ask for. cnnlab's own models are far below them.
MAX_CLASSES = 100_000  # outputs / class names
MAX_CLASS_NAME = 256  # characters per class name
MAX_ARG_INT = 1_000_000  # any integer option in model_args (channels, hidden units...)
MAX_CHANNELS = 64  # input channels
MAX_SIDE = 4096  # input height / width
MAX_PARAMETERS = 1 << 28  # 1 GiB of float32 weights
MAX_JSON_CHARS = 16 * 1024 * 1024  # one manifest / metadata value
MAX_JSON_DEPTH = 32  # nesting of a manifest (cnnlab's own use 4)
NORMALIZER_KINDS = ("unit", "half", "meanstd", "pixel")


def _name(value: Any) -> str:
    return type(value).__name__


def first_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's first line of text (at most ``limit`` characters), or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else _name(exc)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- JSON


def loads_json(text: str | bytes, source: Any, field: str = "manifest") -> Any:
    """``json.loads`` with bounded size and nesting; one-line CheckpointError otherwise."""
    if len(text) > MAX_JSON_CHARS:
        raise CheckpointError(f"{source}: {field} is {len(text):,} characters (limit "
                              f"{MAX_JSON_CHARS:,})")  # fmt: skip
    if _depth(text) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{source}: {field} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        reason = first_line(exc, 120)
        raise CheckpointError(f"{source}: {field} is not valid JSON ({reason})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _depth(text: str | bytes) -> int:
    """Deepest bracket nesting, ignoring brackets inside strings (a linear scan, no recursion)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


# ----------------------------------------------------------------------------- fields


def check_model_args(args: Any, source: Any) -> dict[str, Any]:
    """``model_args``: a mapping with a model name and plain values of sane size."""
    if args is None:
        raise CheckpointError(f"{source}: model_args has no model name; cannot rebuild the model")
    if not isinstance(args, Mapping):
        raise CheckpointError(f"{source}: model_args must be a mapping, got {_name(args)}")
    args = dict(args)
    name = args.get("name")
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{source}: model_args has no model name; cannot rebuild the model")
    channels = args.get("in_channels", 1)
    if not _is_int(channels) or not 1 <= channels <= MAX_CHANNELS:
        raise CheckpointError(
            f"{source}: model_args.in_channels={_short(channels)} must be an integer in "
            f"1..{MAX_CHANNELS}"
        )
    classes = args.get("num_classes", 10)
    if not _is_int(classes) or not 1 <= classes <= MAX_CLASSES:
        raise CheckpointError(
            f"{source}: model_args.num_classes={_short(classes)} must be an integer in "
            f"1..{MAX_CLASSES:,}"
        )
    size = args.get("input_size", 28)
    sides = size if isinstance(size, list | tuple) else [size]
    if not 1 <= len(sides) <= 2 or not all(_is_int(s) and 1 <= s <= MAX_SIDE for s in sides):
        raise CheckpointError(
            f"{source}: model_args.input_size={_short(size)} must be one or two integers in "
            f"1..{MAX_SIDE}"
        )
    for key, value in args.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{source}: model_args has a non-text key {_short(key)}")
        _check_plain(value, source, f"model_args.{key}")
    return args


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_plain(value: Any, source: Any, field: str, depth: int = 0) -> None:
    """A model option: None, bool, a bounded int, a finite float, short text or a short list."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_ARG_INT:
            raise CheckpointError(
                f"{source}: {field}={value:,} is out of range (|value| <= {MAX_ARG_INT:,})"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_ARG_INT:
            raise CheckpointError(f"{source}: {field}={value!r} is not a sane finite number")
        return
    if isinstance(value, str):
        if len(value) > 256:
            raise CheckpointError(f"{source}: {field} is a string of {len(value):,} characters")
        return
    if isinstance(value, list | tuple) and depth < 2 and len(value) <= 64:
        for item in value:
            _check_plain(item, source, field, depth + 1)
        return
    raise CheckpointError(f"{source}: {field} has an unusable value {_short(value)}")


def check_input_shape(shape: Any, source: Any) -> tuple[int, int, int]:
    """``input_shape``: three positive integers (C, H, W) within bounds."""
    ok = (
        isinstance(shape, list | tuple)
        and len(shape) == 3
        and all(_is_int(s) for s in shape)
        and 1 <= shape[0] <= MAX_CHANNELS
        and all(1 <= s <= MAX_SIDE for s in shape[1:])
    )
    if not ok:
        raise CheckpointError(
            f"{source}: input_shape={_short(shape)} must be [channels 1..{MAX_CHANNELS}, "
            f"height, width 1..{MAX_SIDE}]"
        )
    return tuple(int(s) for s in shape)


def check_classes(classes: Any, outputs: int | None, source: Any) -> tuple[str, ...]:
    """``classes``: a list of short strings, one per model output."""
    if not isinstance(classes, list | tuple):
        raise CheckpointError(f"{source}: classes must be a list of names, got {_name(classes)}")
    if len(classes) > MAX_CLASSES:
        raise CheckpointError(f"{source}: classes has {len(classes):,} names (limit "
                              f"{MAX_CLASSES:,})")  # fmt: skip
    for i, name in enumerate(classes):
        if not isinstance(name, str | int) or isinstance(name, bool):
            raise CheckpointError(f"{source}: classes[{i}] is a {_name(name)}, not a name")
        if len(str(name)) > MAX_CLASS_NAME:
            raise CheckpointError(f"{source}: classes[{i}] is {len(str(name)):,} characters long")
    if outputs is not None and len(classes) != outputs:
        raise CheckpointError(
            f"{source}: classes lists {len(classes)} names but the model has {outputs} outputs"
        )
    return tuple(str(c) for c in classes)


def check_normalizer(state: Any, shape: tuple[int, int, int] | None, source: Any) -> dict:
    """``normalizer``: ``{"kind": ...}``, with finite mean/std (std > 0) for the fitted kinds."""
    if state is None:
        return {"kind": "unit"}
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: normalizer must be a mapping, got {_name(state)}")
    kind = state.get("kind")
    if kind not in NORMALIZER_KINDS:
        raise CheckpointError(
            f"{source}: normalizer.kind={_short(kind)} is not one of {', '.join(NORMALIZER_KINDS)}"
        )
    if kind in ("meanstd", "pixel"):
        import numpy as np

        arrays = []
        for key in ("mean", "std"):
            try:
                arr = np.asarray(state.get(key), dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise CheckpointError(
                    f"{source}: normalizer.{key} is not an array of numbers"
                ) from None
            if arr.ndim != 3 or not np.isfinite(arr).all():
                raise CheckpointError(
                    f"{source}: normalizer.{key} must be a finite (C, H, W) array, got shape "
                    f"{arr.shape}"
                )
            if shape is not None and any(
                s not in (1, g) for s, g in zip(arr.shape, shape, strict=True)
            ):
                raise CheckpointError(
                    f"{source}: normalizer.{key} of shape {arr.shape} does not fit input_shape "
                    f"{shape}"
                )
            arrays.append(arr)
        if arrays[0].shape != arrays[1].shape or not (arrays[1] > 0).all():
            raise CheckpointError(f"{source}: normalizer mean/std differ in shape or std <= 0")
    return dict(state)


def check_text(value: Any, source: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 256:
        raise CheckpointError(f"{source}: {field} must be short text, got {_short(value)}")
    return value


# ----------------------------------------------------------------------------- tensors


def check_state(state: Any, source: Any) -> dict[str, Any]:
    """``model_state``: names -> dense, finite tensors that own their memory."""
    import torch

    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: model_state must be a mapping, got {_name(state)}")
    if not state:
        raise CheckpointError(f"{source}: model_state holds no tensors")
    total = 0
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{source}: model_state has a non-text key {_short(key)}")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: model_state.{key} is a {_name(value)}, not a tensor")
        if value.layout != torch.strided or value.device.type != "cpu" or value.is_quantized:
            raise CheckpointError(f"{source}: model_state.{key} is not a dense CPU tensor")
        need = value.numel() * value.element_size()
        if need > value.untyped_storage().nbytes():  # a broadcast view: huge shape, tiny data
            raise CheckpointError(
                f"{source}: model_state.{key} claims shape {tuple(value.shape)} over "
                f"{value.untyped_storage().nbytes():,} bytes of data"
            )
        total += value.numel()
        floating = value.is_floating_point() or value.is_complex()
        if floating and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{source}: model_state.{key} contains NaN or infinity (a diverged or "
                "damaged model)"
            )
    if total > MAX_PARAMETERS:
        raise CheckpointError(f"{source}: model_state holds {total:,} numbers (limit "
                              f"{MAX_PARAMETERS:,})")  # fmt: skip
    return dict(state)


def check_model_size(args: Mapping[str, Any], source: Any, field: str = "model_args") -> Any:
    """Build ``create_model(**args)`` on the meta device (no memory) and bound its size.

    Returns the meta model, whose ``state_dict()`` shapes can be compared with stored tensors.
    """
    import torch

    from cnnlab.models import create_model

    try:
        with torch.device("meta"):
            model = create_model(**args)
    except CnnlabError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    except Exception as exc:  # a builder fed absurd values: TypeError, RuntimeError...
        reason = first_line(exc, 160)
        raise CheckpointError(f"{source}: {field} do not build a model ({reason})") from None
    count = sum(t.numel() for t in model.state_dict().values())
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{source}: {field} describe a model of {count:,} numbers (limit {MAX_PARAMETERS:,})"
        )
    return model


def meta_outputs(model: Any, shape: tuple[int, int, int], source: Any) -> int:
    """Number of outputs of ``model`` for one (C, H, W) input, computed on the meta device."""
    import torch

    try:
        with torch.no_grad():
            out = model(torch.empty((1, *shape), device="meta"))
    except Exception as exc:  # the stored input shape does not fit the network
        reason = first_line(exc, 160)
        raise CheckpointError(
            f"{source}: input_shape {list(shape)} does not fit the model ({reason})"
        ) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        return -1
    return int(out.shape[1])


def rebuild_model(payload: Mapping[str, Any], source: Any) -> Any:
    """The checked model of a payload (``model_args``, ``model_state``) in eval mode on the CPU.

    Everything is validated, and the network built on the meta device and compared with the
    stored tensors, before the real one is allocated.
    """
    from cnnlab.engine.checkpoint import check_fit, load_weights
    from cnnlab.models import create_model

    args = check_model_args(payload.get("model_args"), source)
    try:
        state = check_state(payload.get("model_state"), source)
        checked = {"model_args": args, "model_state": state,
                   "flatten_order": payload.get("flatten_order")}  # fmt: skip
        check_fit(check_model_size(args, source), checked, source=str(source))
        model = create_model(**args)
        load_weights(model, checked, source=str(source))
    except CnnlabError:
        raise
    except Exception as exc:  # odd dtypes or tensor kinds torch cannot check or copy
        reason = first_line(exc, 160)
        raise CheckpointError(f"{source}: cannot use the stored weights ({reason})") from None
    return model.eval()


def check_payload(payload: Any, source: Any) -> dict[str, Any]:
    """The descriptive fields of a checkpoint or manifest, checked against each other.

    Returns a copy with ``input_shape`` (tuple), ``classes`` (tuple of str), ``normalizer`` and
    ``dataset`` filled in; ``model_args``/``model_state`` are checked by :func:`rebuild_model`.
    """
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{source} is not a cnnlab checkpoint (got {_name(payload)})")
    out = dict(payload)
    args = check_model_args(out.get("model_args"), source)
    side = args.get("input_size", 28)
    h, w = (side, side) if _is_int(side) else tuple(side) * (2 // len(side))
    shape = out.get("input_shape")
    shape = check_input_shape(list(shape) if isinstance(shape, tuple) else shape, source) if (
        shape is not None) else (args.get("in_channels", 1), h, w)  # fmt: skip
    out["input_shape"] = shape
    model = check_model_size(args, source)
    outputs = meta_outputs(model, shape, source)
    if outputs == -1:
        raise CheckpointError(f"{source}: the model does not return one row of scores per image")
    classes = out.get("classes")
    if classes is None:
        classes = [str(i) for i in range(outputs)]
    out["classes"] = check_classes(classes, outputs, source)
    out["normalizer"] = check_normalizer(out.get("normalizer"), shape, source)
    out["dataset"] = check_text(out.get("dataset"), source, "dataset")
    return out


def check_logits(logits: Any, n: int, classes: int, source: Any) -> None:
    """A backend's answer: finite scores of shape (n, classes)."""
    import numpy as np

    arr = np.asarray(logits)
    if arr.shape != (n, classes):
        raise CheckpointError(
            f"{source}: the model returned scores of shape {arr.shape}, expected ({n}, {classes})"
        )
    if not np.isfinite(arr).all():
        raise CheckpointError(f"{source}: the model returned NaN or infinite scores")


def check_backend(backend: Any, source: Any) -> None:
    """Run one blank image through a freshly loaded backend: scores of shape (1, classes)."""
    import numpy as np

    x = np.zeros((1, *backend.input_shape), np.float32)
    try:
        logits = backend.logits(x)
    except CnnlabError:
        raise
    except Exception as exc:  # ONNX Runtime / torch failures on a crafted graph
        reason = first_line(exc, 160)
        raise CheckpointError(
            f"{source}: the model fails on a {x.shape} input ({reason})"
        ) from None
    check_logits(logits, 1, len(backend.classes), source)
