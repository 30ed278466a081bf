"""A model as plain ``torch.nn`` layers, so its weights load without cnnlab.

Every registered model is a chain: running its leaf modules one after the other, in the order
the forward pass calls them, is the model. :func:`layer_specs` writes that chain as JSON-ready
dicts ``{"name", "type", "args"}``: ``type`` is a ``torch.nn`` class and ``args`` its
constructor arguments, except ``"Scale"``, a learnable scalar multiplying its input (parameter
``scale``). ``name`` prefixes the layer's tensors in the state dict. Dense layers after a
flatten take the ordinary NCHW ``torch.flatten`` order (``FLATTEN_ORDER``), whatever memory
layout the model computes in. The safetensors files cnnlab writes store the list under the
metadata key ``layers``; the user guide shows the twenty lines of torch that rebuild them.

>>> from cnnlab.models import create_model
>>> [s["type"] for s in layer_specs(create_model("model_a"))]
['Conv2d', 'ReLU', 'MaxPool2d', 'Conv2d', 'ReLU', 'MaxPool2d', 'Flatten', 'Linear']
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError

FLATTEN_ORDER = "nchw"  # what the weights of a dense layer after a flatten expect


def _conv(m: nn.Conv2d) -> dict:
    return {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": list(m.kernel_size),
        "stride": list(m.stride),
        "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
        "dilation": list(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
        "padding_mode": m.padding_mode,
    }


def _pool(m: nn.Module) -> dict:
    keys = ("kernel_size", "stride", "padding", "ceil_mode")
    extra = ("dilation",) if isinstance(m, nn.MaxPool2d) else ("count_include_pad",)
    return {k: getattr(m, k) for k in keys + extra}


_ARGS = {
    nn.Conv2d: _conv,
    nn.Linear: lambda m: {
        "in_features": m.in_features,
        "out_features": m.out_features,
        "bias": m.bias is not None,
    },
    nn.BatchNorm2d: lambda m: {"num_features": m.num_features, "eps": m.eps},
    nn.MaxPool2d: _pool,
    nn.AvgPool2d: _pool,
    nn.AdaptiveMaxPool2d: lambda m: {"output_size": m.output_size},
    nn.AdaptiveAvgPool2d: lambda m: {"output_size": m.output_size},
    nn.PixelUnshuffle: lambda m: {"downscale_factor": m.downscale_factor},
    nn.Flatten: lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    nn.ReLU: lambda m: {},
    nn.Tanh: lambda m: {},
    nn.GELU: lambda m: {"approximate": m.approximate},
    nn.Dropout: lambda m: {"p": m.p},
}


def _spec(name: str, module: nn.Module) -> list[dict]:
    own = getattr(module, "portable_layers", None)
    if own is not None:  # a cnnlab layer that says which torch layers it equals
        return own(name)
    for cls, args in _ARGS.items():
        if type(module) is cls:
            return [{"name": name, "type": cls.__name__, "args": args(module)}]
    raise CnnlabError(f"layer {name!r} ({type(module).__name__}) has no plain torch equivalent")


def layer_specs(model: nn.Module, input_shape: tuple[int, int, int] | None = None) -> list[dict]:
    """The model's leaf layers in forward order as ``{"name", "type", "args"}`` dicts.

    Args:
        model: a registered model (``create_model``) or any chain of supported layers.
        input_shape: (C, H, W) of one sample; default from ``model.cnnlab_args``.

    Raises:
        CnnlabError: a layer has no torch equivalent, or the model is not a chain (a layer
            runs twice, or one holding weights never runs).
    """
    if input_shape is None:
        args = getattr(model, "cnnlab_args", {})
        size = args.get("input_size", 28)
        h, w = (size, size) if isinstance(size, int) else size
        input_shape = (args.get("in_channels", 1), h, w)
    leaves = {
        m: n
        for n, m in model.named_modules()
        if n and (not any(True for _ in m.children()) or hasattr(m, "portable_layers"))
    }
    order: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda m, _: order.append(m)) for m in leaves]
    was_training = model.training
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, dtype=dtype))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    idle = [n for m, n in leaves.items() if m not in order and any(True for _ in m.parameters())]
    if len(set(order)) != len(order) or idle:
        raise CnnlabError(f"{type(model).__name__} is not a plain chain of layers")
    return [spec for m in order for spec in _spec(leaves[m], m)]
