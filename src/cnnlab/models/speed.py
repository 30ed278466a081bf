"""speednet: the fastest net to 99% MNIST on a 2-core CPU (see README.md, "Training speed").

Measured on this project's CPU (bench/train.py), three shape choices matter:

- **Space-to-depth stem.** ``PixelUnshuffle(2)`` turns a (1, 28, 28) image into (4, 14, 14) for
  free, so the first convolution runs on a quarter of the positions with 4 input channels.
  oneDNN is very slow for 1-channel convolutions at full resolution (the first layer of a
  classic net costs as much as the rest), and this removes that layer.
- **Pool before norm.** Stage 1 is conv -> max pool -> batch norm -> ReLU (as in airbench):
  norm and activation run on a quarter of the pixels.
- **Flat head.** A linear layer on the flattened 7x7 map keeps the digit's layout; it reached
  99% in fewer epochs than a global max pool head at the same cost. It multiplies the NHWC
  view of the map (free for a channels_last map, so the gradient keeps the map's layout) by
  weights stored for the ordinary NCHW flatten (:class:`FlattenLinear`): the saved weights load
  into a plain ``nn.Flatten()`` + ``nn.Linear``.

>>> import torch
>>> from cnnlab.models import create_model
>>> import cnnlab.models.speed  # noqa: F401  (registers speednet)
>>> create_model("speednet")(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from cnnlab.errors import CnnlabError
from cnnlab.models.layers import CnnlabModel, ShapeTracker, check_int, check_ints
from cnnlab.models.registry import _REGISTRY, register_model


class FlattenLinear(nn.Linear):
    """``Linear(flatten(x))`` for a (B, C, H, W) map, computed on the map's NHWC view.

    The weight has the ordinary layout, ``(out, C*H*W)`` in NCHW flatten order, so the state
    dict is the one of ``nn.Flatten()`` + ``nn.Linear``; the forward pass permutes the (small)
    weight instead of the (large) activations.

    >>> import torch
    >>> layer = FlattenLinear((3, 2, 2), 5)
    >>> x = torch.randn(4, 3, 2, 2).to(memory_format=torch.channels_last)
    >>> torch.allclose(layer(x), F.linear(x.flatten(1), layer.weight, layer.bias), atol=1e-6)
    True
    """

    def __init__(self, map_shape: tuple[int, int, int], out_features: int) -> None:
        c, h, w = map_shape
        super().__init__(c * h * w, out_features)
        self.map_shape = (c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        c, h, w = self.map_shape
        weight = self.weight.view(-1, c, h, w).permute(0, 2, 3, 1).reshape(self.out_features, -1)
        return F.linear(x.permute(0, 2, 3, 1).flatten(1), weight, self.bias)

    def portable_layers(self, name: str) -> list[dict]:
        """The same layer in plain torch (see :mod:`cnnlab.models.portable`)."""
        linear = {"in_features": self.in_features, "out_features": self.out_features}
        return [
            {"name": f"{name}_flatten", "type": "Flatten", "args": {"start_dim": 1, "end_dim": -1}},
            {"name": name, "type": "Linear", "args": {**linear, "bias": True}},
        ]


class SpeedNet(CnnlabModel):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: tuple[int, int],
        widths: tuple[int, int],
        unshuffle: int,
    ) -> None:
        super().__init__()
        h, w = input_size
        if h % unshuffle or w % unshuffle:
            raise CnnlabError(
                f"input_size={h}x{w} must be divisible by unshuffle={unshuffle} for speednet"
            )
        shape = ShapeTracker("speednet", (h, w))  # errors name the user's input size
        shape.hw = (h // unshuffle, w // unshuffle)  # after the space-to-depth stem
        c1, c2 = widths
        self.stem = nn.PixelUnshuffle(unshuffle)  # (B, C*r*r, H/r, W/r)
        self.conv1 = nn.Conv2d(in_channels * unshuffle**2, c1, 3, padding=1, bias=False)
        shape.conv("conv1", 3, 1)
        self.pool1 = nn.MaxPool2d(2)
        shape.pool("pool1", 2)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, bias=False)
        shape.conv("conv2", 3, 1)
        self.bn2 = nn.BatchNorm2d(c2)
        self.relu2 = nn.ReLU(inplace=True)
        self.fc = FlattenLinear((c2, *shape.hw), num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (B, 4, 14, 14) for a 28x28 gray image and unshuffle=2
        x = self.relu1(self.bn1(self.pool1(self.conv1(x))))  # (B, c1, 7, 7)
        return self.relu2(self.bn2(self.conv2(x)))  # (B, c2, 7, 7)

    def forward_head(self, x: Tensor) -> Tensor:
        # flattened as an NHWC view, so the gradient keeps a channels_last map's layout (the
        # NCHW flatten made ReLU's backward run on mixed layouts, 8x slower)
        return self.fc(x)  # (B, num_classes) logits

    def upgrade_state(self, state: dict[str, Tensor], flatten_order: str | None) -> dict:
        """Weights saved without a flatten order come from the old head, which stored the
        linear weight in NHWC flatten order (``"nhwc"``): reorder them to NCHW."""
        key = "fc.weight"
        if flatten_order not in (None, "nhwc") or key not in state or state[key].dim() != 2:
            return state
        c, h, w = self.fc.map_shape
        old = state[key]
        if old.shape[1] != c * h * w:
            return state  # load_weights names the shape mismatch
        new = old.reshape(-1, h, w, c).permute(0, 3, 1, 2).reshape(old.shape)
        return {**state, key: new.contiguous()}


def _register() -> None:
    # Idempotent: this module may be imported by cnnlab.models and by bench/tests directly.
    if "speednet" in _REGISTRY:
        return

    @register_model("speednet")
    def speednet(
        in_channels: int,
        num_classes: int,
        input_size: tuple[int, int],
        *,
        widths=(32, 64),
        unshuffle=2,
    ) -> SpeedNet:
        """Fast CPU net: space-to-depth 2, conv-pool-BN-ReLU, conv-BN-ReLU, flat linear head."""
        widths = check_ints("widths", widths)
        if len(widths) != 2:
            raise CnnlabError(f"widths={list(widths)} must have 2 entries for speednet")
        return SpeedNet(
            in_channels, num_classes, input_size, widths, check_int("unshuffle", unshuffle)
        )


_register()
