"""A model summary like torchinfo / Keras ``model.summary()``, plus receptive field and jump.

Rows come from forward hooks on a dummy input. Conventions:

- ``output_shape`` is per sample, without the batch dimension, in PyTorch's (C, H, W) order
  (Keras prints (H, W, C): the notebooks' (26, 26, 32) is our (32, 26, 26)).
- ``mult_adds`` follows torchinfo for a batch of one: a conv layer counts
  ``(weight + bias elements) * output H * W``; any other layer with a weight/bias counts its
  parameter elements (Linear: ``in * out + out``; BatchNorm: ``2 * C``); the rest count 0.
- Receptive field ``r`` and jump ``j`` (stride product) on the input follow the standard
  recurrences along the forward order: ``r_out = r_in + (k - 1) * d * j_in``,
  ``j_out = j_in * s``, and ``start_out = start_in + ((k - 1) / 2 * d - p) * j_in`` (input
  coordinate of the centre of output unit 0). Conv, pooling and space-to-depth
  (``PixelUnshuffle``) windows count; element-wise layers (activations, batch norm, dropout)
  keep them. The recurrence assumes a chain of layers (true for every registered model).
- Coverage is the part of the input that reaches a layer at all: the union of the windows of
  all its units, as first and last input row and column. Valid convolutions keep it, but a
  floor pooling (or a stride) that has no unit for the last rows of its input drops them for
  good: ``tutorial_cnn`` never sees the last two rows and columns of a 28x28 image.
- From the first Flatten / Linear / adaptive pooling on, one unit combines every position, so
  its receptive field is the coverage (jump ``None``). For an adaptive pooling with more than
  one output per axis that is an upper bound.
- With a stride larger than the window (gaps between units) the boxes are outer bounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from cnnlab.errors import CnnlabError

Pair = tuple[int, int]
_WINDOW = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.PixelUnshuffle)
_GLOBAL = (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass(frozen=True)
class SummaryRow:
    """One executed module. ``depth`` is 1 for the model's children, 2 for theirs, ..."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    kernel_size: Pair | None
    stride: Pair | None
    mult_adds: int
    receptive_field: Pair | None
    jump: Pair | None
    depth: int
    start: tuple[float, float] | None = None  # input coordinate of output unit (0, 0)'s centre
    coverage: tuple[Pair, Pair] | None = None  # ((first, last) row, (first, last) col) seen

    def unit_box(self, unit: Pair) -> tuple[Pair, Pair]:
        """Input ``((top, bottom), (left, right))`` (inclusive) that output ``unit`` sees.

        The receptive field around the unit's centre, clipped to the covered input.

        >>> from cnnlab.models import create_model
        >>> rows = {r.name: r for r in summary(create_model("tutorial_cnn")).rows}
        >>> rows["conv3"].unit_box((0, 0)), rows["conv3"].unit_box((2, 2))
        (((0, 17), (0, 17)), ((8, 25), (8, 25)))
        """
        if self.coverage is None or self.receptive_field is None:
            raise CnnlabError(f"layer {self.name!r} has no receptive field")
        if self.jump is None or self.start is None:
            return self.coverage
        box = []
        for a in (0, 1):
            centre = self.start[a] + unit[a] * self.jump[a]
            half = (self.receptive_field[a] - 1) / 2
            lo, hi = self.coverage[a]
            box.append((max(lo, math.ceil(centre - half)), min(hi, math.floor(centre + half))))
        return box[0], box[1]


@dataclass(repr=False)
class Summary:
    """The result of :func:`summary`; ``to_text()`` for people, ``to_dict()`` for JSON.

    Its repr is the text table, and Jupyter shows it as an HTML table.
    """

    model_name: str
    input_size: tuple[int, ...]
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    total_mult_adds: int
    param_bytes: int
    output_shape: tuple[int, ...] = field(default=())
    coverage: tuple[Pair, Pair] | None = None  # input rows/cols the output depends on

    @property
    def unseen(self) -> dict[str, int]:
        """Input rows/columns no output can depend on: ``{"top": 0, "bottom": 2, ...}``."""
        h, w = self.input_size[1:]
        if self.coverage is None:
            return {"top": 0, "bottom": 0, "left": 0, "right": 0}
        (r0, r1), (c0, c1) = self.coverage
        return {"top": r0, "bottom": h - 1 - r1, "left": c0, "right": w - 1 - c1}

    def to_dict(self) -> dict:
        """Plain lists/ints/strings, ready for ``json.dumps``."""
        d = asdict(self)
        d["rows"] = [_jsonable(asdict(r)) for r in self.rows]
        d["unseen"] = self.unseen
        return _jsonable(d)

    def to_text(self) -> str:
        """A torchinfo-style table with totals and notes underneath."""
        from cnnlab.models.summary_render import render_text

        return render_text(self)

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        from cnnlab.models.summary_render import render_html

        return render_html(self)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _pair(value) -> Pair:
    return (int(value[0]), int(value[1])) if isinstance(value, Sequence) else (value, value)


def _window(module: nn.Module) -> tuple[Pair, Pair, Pair, Pair]:
    """(kernel, stride, padding, dilation) of a conv / pooling module as (h, w) pairs.

    A space-to-depth ``PixelUnshuffle(r)`` is an r x r window with stride r: output unit 0 holds
    input pixels 0..r-1 as channels.
    """
    if isinstance(module, nn.PixelUnshuffle):
        r = module.downscale_factor
        return (r, r), (r, r), (0, 0), (1, 1)
    k = _pair(module.kernel_size)
    stride = module.stride if module.stride is not None else module.kernel_size
    padding = module.padding
    if isinstance(padding, str):  # Conv2d(padding="same" | "valid")
        padding = (
            0
            if padding == "valid"
            else tuple((d * (kk - 1)) // 2 for kk, d in zip(k, _pair(module.dilation), strict=True))
        )
    dilation = getattr(module, "dilation", 1)
    return k, _pair(stride), _pair(padding), _pair(dilation)


def _mult_adds(module: nn.Module, out_shape: Sequence[int]) -> int:
    """torchinfo's Mult-Adds for a batch of one (see module docstring)."""
    total = 0
    for name, p in module.named_parameters(recurse=False):
        if name not in ("weight", "bias"):
            continue
        if isinstance(module, nn.modules.conv._ConvNd):
            spatial = 1
            for n in out_shape[1:]:
                spatial *= int(n)
            total += p.numel() * spatial
        else:
            total += p.numel()
    return total


class _FieldTracker:
    """Receptive field, jump, start and coverage along the forward order, per axis."""

    def __init__(self, input_hw: Pair) -> None:
        self.r, self.j, self.start = [1, 1], [1, 1], [0.0, 0.0]
        self.size = list(input_hw)  # length of the current map along each axis
        self.cover = [[0, input_hw[0] - 1], [0, input_hw[1] - 1]]  # first/last input pixel seen
        self.is_global = False

    def update(self, module: nn.Module, out_shape: Sequence[int]) -> None:
        if self.is_global:
            return
        if isinstance(module, _GLOBAL):
            self.is_global = True
        elif isinstance(module, _WINDOW) and len(out_shape) == 3:
            k, s, p, d = _window(module)
            for a in (0, 1):
                n = int(out_shape[1 + a])
                # the last input index any output unit reads (padding beyond the map reads none)
                last = min(self.size[a] - 1, (n - 1) * s[a] - p[a] + (k[a] - 1) * d[a])
                reach = self.start[a] + last * self.j[a] + (self.r[a] - 1) / 2
                self.cover[a][1] = min(self.cover[a][1], math.floor(reach))
                self.start[a] += ((k[a] - 1) / 2 * d[a] - p[a]) * self.j[a]
                self.r[a] += (k[a] - 1) * d[a] * self.j[a]
                self.j[a] *= s[a]
                self.size[a] = n

    def state(self) -> tuple[Pair, Pair | None, tuple[float, float] | None, tuple[Pair, Pair]]:
        cover = ((self.cover[0][0], self.cover[0][1]), (self.cover[1][0], self.cover[1][1]))
        if self.is_global:
            seen = tuple(hi - lo + 1 for lo, hi in cover)
            return (seen[0], seen[1]), None, None, cover
        rf = (self.r[0], self.r[1])
        return rf, (self.j[0], self.j[1]), (self.start[0], self.start[1]), cover


def _input_size(input_size: Sequence[int] | int) -> tuple[int, int, int]:
    if isinstance(input_size, int):
        input_size = (1, input_size, input_size)
    size = tuple(input_size)
    ok = len(size) == 3 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    if not ok or min(size) < 1:
        raise CnnlabError(f"input_size={input_size!r} must be three positive ints (C, H, W)")
    return size  # type: ignore[return-value]


def summary(
    model: nn.Module, input_size: Sequence[int] | int = (1, 28, 28), depth: int = 3
) -> Summary:
    """Run one dummy sample through ``model`` and tabulate every module it executes.

    Args:
        model: any ``nn.Module`` taking a (B, C, H, W) tensor.
        input_size: (C, H, W) of one sample (an int n means (1, n, n)).
        depth: show modules nested at most this deep; a container at the limit shows the
            totals of what it contains.

    Returns:
        A :class:`Summary`; totals always cover the whole model.

    >>> from cnnlab.models import create_model
    >>> s = summary(create_model("tutorial_cnn"), (1, 28, 28))
    >>> [r.params for r in s.rows if r.params], s.total_params
    ([320, 18496, 36928, 36928, 650], 93322)
    """
    c, h, w = _input_size(input_size)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise CnnlabError(f"depth={depth!r} must be an integer >= 1")
    names = {m: n for n, m in model.named_modules() if n}
    tracker = _FieldTracker((h, w))
    calls: list[dict] = []  # in pre-order (a container before its children)
    stack: list[dict] = []

    def pre_hook(module, args):
        rec = {"module": module, "name": names[module], "macs": 0}
        calls.append(rec)
        stack.append(rec)

    def post_hook(module, args, output):
        rec = stack.pop()
        shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else ()
        rec["shape"] = shape
        if not any(True for _ in module.children()):
            tracker.update(module, shape)
            rec["macs"] = _mult_adds(module, shape)
            for parent in stack:  # containers report the sum of their leaves
                parent["macs"] += rec["macs"]
        rec["field"] = tracker.state()

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        x = torch.zeros(1, c, h, w, dtype=param.dtype if param is not None else torch.float32)
        with torch.no_grad():
            out = model(x)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CnnlabError(f"input_size={c}x{h}x{w} does not fit the model: {first}") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return _build(model, (c, h, w), calls, depth, out, tracker.state()[3])


def _build(model, input_size, calls, depth, out, coverage) -> Summary:
    rows = []
    for rec in calls:
        name, module = rec["name"], rec["module"]
        level = name.count(".") + 1
        if level > depth:
            continue
        is_window = isinstance(module, _WINDOW)
        k, s = _window(module)[:2] if is_window else (None, None)
        rf, jump, start, cover = rec["field"]
        rows.append(
            SummaryRow(
                name=name,
                kind=type(module).__name__,
                output_shape=rec.get("shape", ()),
                params=sum(p.numel() for p in module.parameters()),
                kernel_size=k,
                stride=s,
                mult_adds=rec["macs"],
                receptive_field=rf,
                jump=jump,
                depth=level,
                start=start,
                coverage=cover,
            )
        )
    params = list(model.parameters())
    return Summary(
        model_name=getattr(model, "cnnlab_args", {}).get("name", type(model).__name__),
        input_size=input_size,
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_mult_adds=sum(rec["macs"] for rec in calls if rec["name"].count(".") == 0),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        output_shape=tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else (),
        coverage=coverage,
    )
