"""speednet: the fastest net to 99% MNIST on a 2-core CPU (see README.md, "Training speed").

Measured on this project's CPU (bench/train.py), three shape choices matter:

- **Space-to-depth stem.** ``PixelUnshuffle(2)`` turns a (1, 28, 28) image into (4, 14, 14) for
  free, so the first convolution runs on a quarter of the positions with 4 input channels.
  oneDNN is very slow for 1-channel convolutions at full resolution (the first layer of a
  classic net costs as much as the rest), and this removes that layer.
- **Pool before norm.** Stage 1 is conv -> max pool -> batch norm -> ReLU (as in airbench):
  norm and activation run on a quarter of the pixels.
- **Flat head.** A linear layer on the flattened 7x7 map keeps the digit's layout; it reached
  99% in fewer epochs than a global max pool head at the same cost. It flattens in NHWC order,
  a free view of a channels_last map, so the gradient keeps the map's layout.

>>> import torch
>>> from cnnlab.models import create_model
>>> import cnnlab.models.speed  # noqa: F401  (registers speednet)
>>> create_model("speednet")(torch.zeros(2, 1, 28, 28)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models.layers import CnnlabModel, ShapeTracker, check_int, check_ints
from cnnlab.models.registry import _REGISTRY, register_model


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
        self.fc = nn.Linear(c2 * shape.numel_per_channel, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (B, 4, 14, 14) for a 28x28 gray image and unshuffle=2
        x = self.relu1(self.bn1(self.pool1(self.conv1(x))))  # (B, c1, 7, 7)
        return self.relu2(self.bn2(self.conv2(x)))  # (B, c2, 7, 7)

    def forward_head(self, x: Tensor) -> Tensor:
        # NHWC order: a view of a channels_last map, so the gradient keeps its layout (the NCHW
        # flatten made ReLU's backward run on mixed layouts, 8x slower)
        return self.fc(x.permute(0, 2, 3, 1).flatten(1))  # (B, num_classes) logits


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
