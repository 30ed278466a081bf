"""Intermediate activations: the feature maps of every conv/pool layer for one image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from cnnlab.errors import CnnlabError
from cnnlab.run import Run
from cnnlab.run import as_run as load_run
from cnnlab.viz._grid import DIVERGING, GRAY, POSITIVE, new_figure, show, symmetric_limits
from cnnlab.viz.model_input import ModelInput, load_input


@dataclass(frozen=True)
class LayerMaps:
    """The output of one feature layer for one image."""

    name: str  # qualified module name, e.g. "conv1"
    kind: str  # module class, e.g. "Conv2d"
    maps: np.ndarray  # (C, H, W)


@dataclass(frozen=True)
class FeatureMaps:
    layers: list[LayerMaps]
    image: ModelInput
    probs: np.ndarray  # (num_classes,) softmax of the logits
    run: Run


def feature_layers(model) -> list[tuple[str, Any]]:
    """Conv and pooling modules in forward order (``model.feature_layers()`` when it exists)."""
    from torch import nn

    if hasattr(model, "feature_layers"):
        return list(model.feature_layers())
    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def capture(model, x, layers: list[tuple[str, Any]]):
    """Run ``model(x)`` and return ``(logits, {name: output})`` via forward hooks."""
    import torch

    outputs: dict[str, Any] = {}

    def hook(name):
        # clone: an in-place ReLU after the layer would otherwise overwrite what we keep
        return lambda _m, _i, out: outputs.__setitem__(name, out.detach().clone())

    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return logits, outputs


def feature_maps(run, image, *, which: str = "best", data_dir=None) -> FeatureMaps:
    """Feature maps of every conv/pool layer of ``run`` for ``image``.

    >>> fm = feature_maps("runs/tutorial_cnn-mnist/version_0", "test:0")  # doctest: +SKIP
    >>> [(l.name, l.maps.shape) for l in fm.layers][:2]  # doctest: +SKIP
    [('conv1', (32, 26, 26)), ('pool1', (32, 13, 13))]
    """
    r = load_run(run, which)
    layers = feature_layers(r.model)
    if not layers:
        raise CnnlabError(f"model {r.name!r} has no conv or pooling layers to show")
    inp = load_input(image, r, data_dir)
    logits, outputs = capture(r.model, inp.tensor, layers)
    rows = [
        LayerMaps(name, type(m).__name__, outputs[name][0].numpy().astype(np.float64))
        for name, m in layers
        if name in outputs  # a layer defined but unused in forward is skipped
    ]
    probs = logits.softmax(-1)[0].numpy().astype(np.float64)
    return FeatureMaps(layers=rows, image=inp, probs=probs, run=r)


def plot_feature_maps(
    run, image, *, max_channels: int = 8, which: str = "best", data_dir=None
) -> Figure:
    """One row per conv/pool layer with its first ``max_channels`` maps; the input on top.

    Signed maps (conv outputs before their ReLU) use a diverging map centred on zero,
    non-negative ones (after ReLU + pooling) a sequential map; each map is scaled on its own.
    """
    if max_channels < 1:
        raise CnnlabError(f"max_channels={max_channels} must be >= 1")
    fm = (
        run
        if isinstance(run, FeatureMaps)
        else feature_maps(run, image, which=which, data_dir=data_dir)
    )
    cols = min(max_channels, max(layer.maps.shape[0] for layer in fm.layers))
    rows = len(fm.layers) + 1
    fig = new_figure(1.15 * cols + 1.2, 1.2 * rows + 0.5)
    grid = fig.add_gridspec(rows, cols)
    pred = int(np.argmax(fm.probs))
    ax = fig.add_subplot(grid[0, 0])
    show(ax, fm.image.display, cmap=GRAY, vmin=0, vmax=1)
    ax.set_ylabel("input", fontsize=9)
    label = f"{fm.run.name}: {fm.image.name} -> {fm.run.classes[pred]} ({fm.probs[pred]:.0%})"
    fig.suptitle(label, fontsize=10)
    for r, layer in enumerate(fm.layers, start=1):
        c, h, w = layer.maps.shape
        signed = bool(np.min(layer.maps) < 0)  # one colour map per row, decided by the layer
        for k in range(min(cols, c)):
            ax = fig.add_subplot(grid[r, k])
            _show_map(ax, layer.maps[k], signed)
            if k == 0:
                ax.set_ylabel(f"{layer.name}\n{c}@{h}x{w}", fontsize=8)
            if r == 1 or k >= fm.layers[r - 2].maps.shape[0]:
                ax.set_title(f"ch {k}", fontsize=7)
    fig.supxlabel(
        "each map scaled on its own; red/blue: signed values (conv outputs before ReLU), "
        "dark-to-yellow: values >= 0",
        fontsize=8,
    )
    return fig


def _show_map(ax, data: np.ndarray, signed: bool) -> None:
    if signed:
        lo, hi = symmetric_limits(data)
        show(ax, data, cmap=DIVERGING, vmin=lo, vmax=hi)
    else:
        top = float(np.max(data))
        show(ax, data, cmap=POSITIVE, vmin=0.0, vmax=top if top > 0 else 1.0)
