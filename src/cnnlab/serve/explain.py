"""What every layer of a model does to one image: the numbers behind the explainer page.

:class:`Explainer` wraps a loaded torch model. For one preprocessed image it gives

- :meth:`Explainer.activations`: the output of every layer the forward pass runs (conv,
  activation, pooling, batch norm, flatten, dense...), in forward order, named and shaped as in
  :func:`cnnlab.models.summary.summary`;
- :meth:`Explainer.unit`: for one unit of one layer, its theoretical receptive field (a box on
  the input, from the summary's receptive field, jump and start), its effective receptive field
  (the gradient of the unit with respect to the network's input) and the arithmetic that
  produced its value: patch x kernel + bias for a convolution, the window for a pooling unit,
  the largest weight x input terms for a dense unit, ``f(x)`` for element-wise layers;
- :meth:`Explainer.kernels`: a conv layer's learned weights.

Forward hooks are registered once and read a thread-local switch, so requests in other threads
(``POST /predict`` shares the model) neither see nor disturb each other's captures.

>>> from cnnlab.models import create_model
>>> import numpy as np
>>> ex = Explainer(create_model("tutorial_cnn"), None, (1, 28, 28), tuple("0123456789"))
>>> [layer.name for layer in ex.layers][:3]
['conv1', 'relu1', 'pool1']
>>> u = ex.unit(np.zeros((1, 28, 28), np.float32), "conv1", channel=0, row=5, col=5)
>>> abs(u["arithmetic"]["total"] - u["value"]) < 1e-5
True
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnlab.engine.tta import mirror_mean
from cnnlab.errors import CnnlabError
from cnnlab.serve.arithmetic import arithmetic

# How a layer is drawn and explained, by module class name.
_ACTIVATIONS = {
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Tanh",
    "Sigmoid",
    "Softmax",
    "Hardswish",
    "Mish",
    "PReLU",
}


@dataclass(frozen=True)
class LayerInfo:
    """One layer the forward pass runs, with the summary's shape and receptive-field numbers."""

    name: str  # qualified module name, as in the summary
    kind: str  # module class, e.g. "Conv2d"
    category: str  # conv | activation | pool | norm | dense | reshape | dropout | other
    shape: tuple[int, ...]  # output per sample, (C, H, W) or (N,)
    rf: tuple[int, int]  # receptive field on the input (rows, cols)
    jump: tuple[int, int] | None  # input pixels between neighbouring units; None: global
    start: tuple[float, float] | None  # input coordinate of unit (0, 0)'s centre
    params: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "category": self.category,
            "shape": list(self.shape),
            "receptive_field": list(self.rf),
            "jump": list(self.jump) if self.jump else None,
            "start": list(self.start) if self.start else None,
            "params": self.params,
        }


def _category(module: Any) -> str:
    from torch import nn

    kind = type(module).__name__
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if kind in _ACTIVATIONS:
        return "activation"
    if "Pool" in kind:
        return "pool"
    if "Norm" in kind:
        return "norm"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, (nn.Flatten, nn.PixelUnshuffle, nn.PixelShuffle)):
        return "reshape"
    if "Dropout" in kind:
        return "dropout"
    return "other"


def explained_layers(model: Any, input_shape: tuple[int, int, int]) -> list[LayerInfo]:
    """Every leaf module the forward pass runs, in order, from the model summary.

    >>> from cnnlab.models import create_model
    >>> [(l.name, l.shape) for l in explained_layers(create_model("model_a"), (1, 28, 28))][:2]
    [('cnn1', (16, 28, 28)), ('relu1', (16, 28, 28))]
    """
    from cnnlab.models.summary import summary

    modules = dict(model.named_modules())
    out = []
    for row in summary(model, tuple(input_shape), depth=99).rows:
        module = modules[row.name]
        if any(True for _ in module.children()):
            continue
        out.append(
            LayerInfo(
                name=row.name,
                kind=row.kind,
                category=_category(module),
                shape=tuple(int(s) for s in row.output_shape),
                rf=tuple(row.receptive_field),
                jump=tuple(row.jump) if row.jump else None,
                start=tuple(row.start) if row.start else None,
                params=int(row.params),
            )
        )
    return out


def encode_floats(array: np.ndarray) -> str:
    """base64 of ``array`` as little-endian float32, C order (a JavaScript Float32Array)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def theoretical_box(layer: LayerInfo, row: int, col: int) -> tuple[int, int, int, int]:
    """The input window of unit (row, col): (top, bottom, left, right), inclusive, unclipped.

    Unit ``i`` is centred on input pixel ``start + i * jump`` and sees ``rf`` pixels. Layers
    after the first flatten/dense see the whole input.
    """
    if layer.jump is None or layer.start is None:
        return 0, layer.rf[0] - 1, 0, layer.rf[1] - 1
    lo, hi = [], []
    for axis, index in enumerate((row, col)):
        centre = layer.start[axis] + index * layer.jump[axis]
        lo.append(int(np.ceil(centre - (layer.rf[axis] - 1) / 2)))
        hi.append(int(np.floor(centre + (layer.rf[axis] - 1) / 2)))
    return lo[0], hi[0], lo[1], hi[1]


@dataclass
class Activations:
    """Every layer's output for one image (per sample, float32), in forward order."""

    image: np.ndarray  # (C, H, W) in [0, 1]: the preprocessed image
    probs: np.ndarray  # (num_classes,)
    outputs: dict[str, np.ndarray]


class Explainer:
    """Activations, receptive fields and per-unit arithmetic of one torch model.

    Args:
        model: the ``nn.Module`` (put in eval mode here).
        normalizer: maps a float (N, C, H, W) batch in [0, 1] to the network's input (the
            checkpoint's :class:`cnnlab.data.Normalizer`), or None to use the image as it is.
        input_shape: (C, H, W).
        classes: class names.
        tta: the probabilities average the logits of the image and of its mirror, as the run
            predicts (flip test-time augmentation); the maps are the image's own.
    """

    def __init__(self, model: Any, normalizer: Any, input_shape, classes, tta=False) -> None:
        self.model = model.eval()
        self.normalizer = normalizer
        self.tta = bool(tta)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.classes = tuple(classes)
        self.layers = explained_layers(model, self.input_shape)
        self._by_name = {layer.name: layer for layer in self.layers}
        self._modules = dict(model.named_modules())
        self._local = threading.local()
        for layer in self.layers:
            module = self._modules[layer.name]
            module.register_forward_pre_hook(self._pre_hook(layer.name))
            module.register_forward_hook(self._post_hook(layer.name))

    @classmethod
    def from_run(cls, run: Any) -> Explainer:
        """The explainer of a loaded :class:`cnnlab.run.Run` whose model is a torch module."""
        import torch

        if not isinstance(run.model, torch.nn.Module):
            raise CnnlabError(
                f"the explainer needs a PyTorch checkpoint (.pt or .safetensors); this model was "
                f"loaded from {run.format}"
            )
        return cls(run.model, run.normalizer, run.input_shape, run.classes, tta=run.tta)

    # -- hooks ------------------------------------------------------------------------------
    def _pre_hook(self, name: str):
        def hook(_module, args):
            inputs = getattr(self._local, "inputs", None)
            if inputs is not None and name in inputs:
                inputs[name] = args[0].detach().clone()[0]

        return hook

    def _post_hook(self, name: str):
        def hook(_module, _args, output):
            outputs = getattr(self._local, "outputs", None)
            if outputs is not None and (self._local.wanted is None or name in self._local.wanted):
                # clone: an in-place activation after this layer would overwrite the values
                outputs[name] = output.clone()[0]

        return hook

    def _forward(self, x, wanted: set[str] | None, inputs_of: set[str] = frozenset()):
        """logits, {layer: output}, {layer: input} for one (1, C, H, W) normalised tensor."""
        self._local.outputs, self._local.wanted = {}, wanted
        self._local.inputs = dict.fromkeys(inputs_of)
        try:
            logits = self.model(x)
            return logits, self._local.outputs, self._local.inputs
        finally:
            self._local.outputs = self._local.inputs = self._local.wanted = None

    def _tensor(self, image: np.ndarray):
        import torch

        arr = np.asarray(image, dtype=np.float32)
        if arr.shape != self.input_shape:
            raise CnnlabError(f"image of shape {arr.shape}: the model wants {self.input_shape}")
        x = torch.from_numpy(np.ascontiguousarray(arr))[None]
        return (self.normalizer(x) if self.normalizer is not None else x).float()

    def layer(self, name: str) -> LayerInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise CnnlabError(
                f"layer {name!r} not found; layers: {', '.join(self._by_name)}"
            ) from None

    # -- results ----------------------------------------------------------------------------
    def activations(self, image: np.ndarray) -> Activations:
        """Every layer's output for one (C, H, W) image in [0, 1]."""
        import torch

        x = self._tensor(image)
        with torch.no_grad():
            logits, outputs, _ = self._forward(x, wanted=None)
            if self.tta:  # the mirror's pass records no maps (wanted: none)
                logits = mirror_mean(lambda b: self._forward(b, wanted=set())[0], x, logits)
        probs = logits[0].float().softmax(-1).numpy()
        maps = {name: out.float().numpy() for name, out in outputs.items()}
        return Activations(np.asarray(image, dtype=np.float32), probs, maps)

    def unit(self, image: np.ndarray, layer: str, channel: int, row: int = 0, col: int = 0):
        """Receptive field, effective receptive field and arithmetic of one unit.

        Args:
            image: (C, H, W) in [0, 1].
            layer: a layer name (see :attr:`layers`).
            channel: the channel (or the index of a flat layer's unit).
            row, col: the unit's position in a (C, H, W) layer; ignored for flat layers.

        Returns:
            A JSON-ready dict: ``value``, ``box`` / ``box_clipped`` (top, bottom, left, right
            on the input), ``receptive_field``, ``erf`` ((H, W) |d unit / d input| summed over
            the input channels, float64 array) and ``arithmetic``.
        """
        import torch

        info = self.layer(layer)
        index = _unit_index(info, channel, row, col)
        x = self._tensor(image).requires_grad_(True)
        with torch.enable_grad():
            _, outputs, inputs = self._forward(x, wanted={layer}, inputs_of={layer})
            out = outputs[layer]
            # autograd.grad, not backward(): nothing accumulates in the parameters' .grad
            (grad,) = torch.autograd.grad(out[index], x)
        value = float(out[index].detach())
        erf = grad[0].abs().sum(0).double().numpy()
        h, w = self.input_shape[1:]
        box = theoretical_box(info, *(index[1:] if len(index) == 3 else (0, 0)))
        clipped = (max(box[0], 0), min(box[1], h - 1), max(box[2], 0), min(box[3], w - 1))
        module = self._modules[layer]
        source = inputs[layer].float()
        return {
            "layer": layer,
            "kind": info.kind,
            "category": info.category,
            "unit": list(index),
            "value": value,
            "receptive_field": list(info.rf),
            "box": list(box),
            "box_clipped": list(clipped),
            "erf": erf,
            "arithmetic": arithmetic(info, module, source.numpy(), index, value),
        }

    def kernels(self, layer: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A conv layer's weights (out, in/groups, kh, kw) and bias (out,) or None."""
        info = self.layer(layer)
        if info.category != "conv":
            raise CnnlabError(f"layer {layer!r} is a {info.kind}, not a convolution: no kernels")
        module = self._modules[layer]
        weight = module.weight.detach().float().numpy()
        bias = module.bias.detach().float().numpy() if module.bias is not None else None
        return weight, bias


def _unit_index(info: LayerInfo, channel: int, row: int, col: int) -> tuple[int, ...]:
    shape = info.shape
    if len(shape) == 3:
        index = (int(channel), int(row), int(col))
    elif len(shape) == 1:
        index = (int(channel),)
    else:
        raise CnnlabError(f"layer {info.name!r} has output shape {shape}: no units to explain")
    for i, n, what in zip(index, shape, ("channel", "row", "col"), strict=False):
        if not 0 <= i < n:
            raise CnnlabError(f"{what}={i} is outside 0..{n - 1} for layer {info.name!r} {shape}")
    return index
