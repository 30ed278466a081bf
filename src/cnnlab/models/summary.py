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
  (``PixelUnshuffle``) windows count; element-wise
  layers (activations, batch norm, dropout) keep them; from the first Flatten / Linear /
  adaptive pooling on, every unit sees the whole input, shown as the input size with jump
  ``None``. The recurrence assumes a chain of layers (true for every registered model).
"""

from __future__ import annotations

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


@dataclass
class Summary:
    """The result of :func:`summary`; ``to_text()`` for people, ``to_dict()`` for JSON."""

    model_name: str
    input_size: tuple[int, ...]
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    total_mult_adds: int
    param_bytes: int
    output_shape: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict:
        """Plain lists/ints/strings, ready for ``json.dumps``."""
        d = asdict(self)
        d["rows"] = [_jsonable(asdict(r)) for r in self.rows]
        return _jsonable(d)

    def to_text(self) -> str:
        """A torchinfo-style table with totals underneath."""
        return _render(self)


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
    """Receptive field, jump and start along the forward order, per axis."""

    def __init__(self, input_hw: Pair) -> None:
        self.input_hw = input_hw
        self.r, self.j, self.start = [1, 1], [1, 1], [0.0, 0.0]
        self.is_global = False

    def update(self, module: nn.Module) -> None:
        if self.is_global:
            return
        if isinstance(module, _GLOBAL):
            self.is_global = True
        elif isinstance(module, _WINDOW):
            k, s, p, d = _window(module)
            for a in (0, 1):
                self.start[a] += ((k[a] - 1) / 2 * d[a] - p[a]) * self.j[a]
                self.r[a] += (k[a] - 1) * d[a] * self.j[a]
                self.j[a] *= s[a]

    def state(self) -> tuple[Pair, Pair | None, tuple[float, float] | None]:
        if self.is_global:
            return self.input_hw, None, None
        return (self.r[0], self.r[1]), (self.j[0], self.j[1]), (self.start[0], self.start[1])


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
            tracker.update(module)
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
    return _build(model, (c, h, w), calls, depth, out)


def _build(model, input_size, calls, depth, out) -> Summary:
    rows = []
    for rec in calls:
        name, module = rec["name"], rec["module"]
        level = name.count(".") + 1
        if level > depth:
            continue
        is_window = isinstance(module, _WINDOW)
        k, s = _window(module)[:2] if is_window else (None, None)
        rf, jump, start = rec["field"]
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
    )


def _fmt_pair(value: Pair | None, sep: str = "x", square_as_one: bool = True) -> str:
    if value is None:
        return "-"
    if square_as_one and value[0] == value[1]:
        return str(value[0])
    return f"{value[0]}{sep}{value[1]}"


def _cells(row: SummaryRow) -> list[str]:
    rf = _fmt_pair(row.receptive_field)
    if row.receptive_field is not None and row.jump is None:
        rf = f"{rf} (all)"
    return [
        "  " * (row.depth - 1) + f"{row.name} ({row.kind})",
        str(row.output_shape),
        f"{row.params:,}" if row.params else "-",
        _fmt_pair(row.kernel_size, square_as_one=False),
        _fmt_pair(row.stride),
        f"{row.mult_adds:,}" if row.mult_adds else "-",
        rf,
        _fmt_pair(row.jump),
    ]


def _render(s: Summary) -> str:
    header = [
        "Layer (type)",
        "Output shape",
        "Param #",
        "Kernel",
        "Stride",
        "Mult-adds",
        "RF",
        "Jump",
    ]
    table = [header] + [_cells(r) for r in s.rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    right = {2, 5}  # numbers align right

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = sum(widths) + 2 * (len(widths) - 1)
    c, h, w = s.input_size
    nontrain = s.total_params - s.trainable_params
    lines = [
        f"Model: {s.model_name}    input (C, H, W) = ({c}, {h}, {w})",
        "=" * rule,
        line(header),
        "-" * rule,
        *(line(cells) for cells in table[1:]),
        "=" * rule,
        f"Total params: {s.total_params:,}",
        f"Trainable params: {s.trainable_params:,}",
        f"Non-trainable params: {nontrain:,}",
        f"Total mult-adds (M): {s.total_mult_adds / 1e6:.2f}",
        f"Params size (MB): {s.param_bytes / 1e6:.2f}",
        "-" * rule,
        "Shapes are (C, H, W) per sample. RF: receptive field on the input in pixels;",
        "Jump: input pixels between neighbouring units (stride product);",
        "(all): every unit sees the whole input.",
    ]
    return "\n".join(lines)
