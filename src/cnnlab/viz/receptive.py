"""Receptive fields (notebook 001): the theoretical window of a unit and its effective one.

The theoretical receptive field is the model summary's arithmetic over the chain of conv/pool
layers (``cnnlab.models.summary``; per axis, from ``r = 1, j = 1, start = 0`` at the input):

    r_out = r_in + (k_eff - 1) * j_in        k_eff = dilation * (k - 1) + 1
    j_out = j_in * stride
    start_out = start_in + ((k_eff - 1) / 2 - pad_before) * j_in

so unit ``i`` of a layer is centred on input pixel ``start + i * j`` and sees ``r`` pixels. The
effective receptive field is the gradient of that unit (summed over its channels) with respect
to the input: it is zero outside the theoretical window and usually concentrated in its middle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnlab.errors import CnnlabError
from cnnlab.run import Run
from cnnlab.run import as_run as load_run
from cnnlab.viz._grid import GRAY, HEAT, new_figure, show
from cnnlab.viz.features import feature_layers
from cnnlab.viz.model_input import ModelInput, load_input


@dataclass(frozen=True)
class LayerGeometry:
    """Receptive-field arithmetic of one layer, per axis (rows, cols)."""

    name: str
    rf: tuple[int, int]  # receptive field size in input pixels
    jump: tuple[int, int]  # input pixels between neighbouring units
    start: tuple[float, float]  # input coordinate of unit 0's centre


def layer_geometry(model, input_shape: tuple[int, int, int] = (1, 28, 28)) -> list[LayerGeometry]:
    """Receptive field, jump and start of every conv/pool layer, from the model summary.

    >>> from cnnlab.models import create_model
    >>> [(g.name, g.rf[0], g.jump[0]) for g in layer_geometry(create_model("tutorial_cnn"))]
    [('conv1', 3, 1), ('pool1', 4, 2), ('conv2', 8, 2), ('pool2', 10, 4), ('conv3', 18, 4)]
    """
    from cnnlab.models.summary import summary

    wanted = {name for name, _ in feature_layers(model)}
    rows = summary(model, input_shape, depth=99).rows
    return [
        LayerGeometry(row.name, tuple(row.receptive_field), tuple(row.jump), tuple(row.start))
        for row in rows
        if row.name in wanted and row.jump is not None
    ]


@dataclass(frozen=True)
class ReceptiveField:
    layer: str
    unit: tuple[int, int]
    geometry: LayerGeometry
    box: tuple[int, int, int, int]  # theoretical window in input pixels: top, bottom, left, right
    # (inclusive, clipped to the image)
    gradient: np.ndarray  # (H, W) |d unit / d input| summed over input channels
    layer_map: np.ndarray  # (h, w) the layer's output, mean over channels
    image: ModelInput
    run: Run


def _box(g: LayerGeometry, unit: tuple[int, int], shape: tuple[int, int]):
    lo, hi = [], []
    for a in (0, 1):
        centre = g.start[a] + unit[a] * g.jump[a]
        lo.append(max(0, int(np.ceil(centre - (g.rf[a] - 1) / 2))))
        hi.append(min(shape[a] - 1, int(np.floor(centre + (g.rf[a] - 1) / 2))))
    return lo[0], hi[0], lo[1], hi[1]


def receptive_field(
    run,
    image,
    *,
    layer: str | None = None,
    unit: tuple[int, int] | None = None,
    which: str = "best",
    data_dir=None,
) -> ReceptiveField:
    """Theoretical window and effective receptive field (input gradient) of one unit.

    Args:
        layer: a conv/pool layer name; default the last conv layer.
        unit: (row, col) in that layer's output; default its centre unit.
    """
    r = load_run(run, which)
    layers = feature_layers(r.model)
    geometry = {g.name: g for g in layer_geometry(r.model, r.input_shape)}
    convs = [n for n, m in layers if "Conv" in type(m).__name__]
    if not convs:
        raise CnnlabError(f"model {r.name!r} has no conv layer: no receptive field to draw")
    name = layer or convs[-1]
    if name not in geometry:
        raise CnnlabError(f"layer {name!r} not found; conv/pool layers: {', '.join(geometry)}")
    module = dict(layers)[name]
    inp = load_input(image, r, data_dir)
    x = inp.tensor.clone().requires_grad_(True)
    captured = {}
    handle = module.register_forward_hook(lambda _m, _i, out: captured.setdefault("out", out))
    try:
        r.model(x)
    finally:
        handle.remove()
    out = captured["out"][0]  # (C, h, w)
    h, w = out.shape[-2:]
    unit = unit if unit is not None else (h // 2, w // 2)
    if not (0 <= unit[0] < h and 0 <= unit[1] < w):
        raise CnnlabError(f"unit={unit} is outside layer {name!r} of size {h}x{w}")
    out[:, unit[0], unit[1]].sum().backward()
    grad = x.grad[0].abs().sum(0).numpy().astype(np.float64)
    return ReceptiveField(
        layer=name,
        unit=(int(unit[0]), int(unit[1])),
        geometry=geometry[name],
        box=_box(geometry[name], unit, grad.shape),
        gradient=grad,
        layer_map=out.detach().mean(0).numpy().astype(np.float64),
        image=inp,
        run=r,
    )


def _outline(ax, box, color="tab:red", lw=2.0):
    top, bottom, left, right = box
    rect = Rectangle(
        (left - 0.5, top - 0.5),
        right - left + 1,
        bottom - top + 1,
        fill=False,
        edgecolor=color,
        lw=lw,
    )
    ax.add_patch(rect)


def plot_receptive_field(
    run,
    image,
    *,
    layer: str | None = None,
    unit: tuple[int, int] | None = None,
    which: str = "best",
    data_dir=None,
) -> Figure:
    """Three panels: input with the theoretical window, the layer's map with the unit, and
    the effective receptive field (gradient magnitude) inside the theoretical window."""
    rf = receptive_field(run, image, layer=layer, unit=unit, which=which, data_dir=data_dir)
    g = rf.geometry
    fig = new_figure(9.6, 3.9)
    axes = fig.subplots(1, 3)
    top, bottom, left, right = rf.box
    clipped = (bottom - top + 1, right - left + 1) != g.rf
    note = ", clipped to the image" if clipped else ""
    show(
        axes[0],
        rf.image.display,
        cmap=GRAY,
        vmin=0,
        vmax=1,
        title=f"theoretical RF {g.rf[0]}x{g.rf[1]}\n(jump {g.jump[0]}{note})",
    )
    _outline(axes[0], rf.box)
    lm = rf.layer_map
    show(axes[1], lm, title=f"{rf.layer} output {lm.shape[0]}x{lm.shape[1]}\n(mean over channels)")
    axes[1].add_patch(
        Rectangle((rf.unit[1] - 0.5, rf.unit[0] - 0.5), 1, 1, fill=False, edgecolor="tab:red", lw=2)
    )
    top = float(rf.gradient.max())
    im = show(
        axes[2],
        rf.gradient,
        cmap=HEAT,
        vmin=0,
        vmax=top if top > 0 else 1.0,
        title="effective RF: |d unit / d input|\n(red: theoretical window)",
    )
    _outline(axes[2], rf.box, color="tab:red")
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    fig.suptitle(f"{rf.run.name}: unit {rf.unit} of {rf.layer}, image {rf.image.name}", fontsize=10)
    return fig
