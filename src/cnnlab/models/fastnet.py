"""fastnet: a small batch-norm CNN built for fast CPU training (airbench-style).

Each stage is conv 3x3 (same, no bias) -> max pool 2 -> batch norm -> GELU; pooling before the
norm and activation (as in airbench) runs them on a quarter of the pixels. With ``depth=2`` each
stage goes on with conv 3x3 -> batch norm -> GELU at the pooled size (airbench's conv group).
The head is a global max pool, a bias-free linear layer and a learnable logit scale, so there is
no big dense layer. Widths (default 24-48-96), depth and the initial logit scale are options.
Everything is conv/BN/pool, so ``model.to(memory_format=torch.channels_last)`` works.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models.layers import (
    CnnlabModel,
    ShapeTracker,
    check_choice,
    check_int,
    check_ints,
)
from cnnlab.models.registry import register_model

_ACTS = {"gelu": nn.GELU, "relu": nn.ReLU}


class LogitScale(nn.Module):
    """Multiplies logits by one learnable scalar (a temperature the optimiser can tune)."""

    def __init__(self, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale

    def portable_layers(self, name: str) -> list[dict]:
        """Plain torch has no such layer: the ``Scale`` of :mod:`cnnlab.models.portable`."""
        return [{"name": name, "type": "Scale", "args": {}}]


class FastNet(CnnlabModel):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: tuple[int, int],
        widths: tuple[int, ...],
        activation: str,
        logit_scale: float,
        depth: int = 1,
    ) -> None:
        super().__init__()
        act = _ACTS[check_choice("activation", activation, tuple(_ACTS))]
        shape = ShapeTracker("fastnet", input_size)
        c_in = in_channels
        for i, width in enumerate(widths, start=1):
            shape.conv(f"stage{i}.conv", 3, 1)
            shape.pool(f"stage{i}.pool", 2)
            stage = OrderedDict(
                conv=nn.Conv2d(c_in, width, kernel_size=3, padding=1, bias=False),
                pool=nn.MaxPool2d(2),
                bn=nn.BatchNorm2d(width),
                act=act(),
            )
            for j in range(2, depth + 1):  # more convs at the pooled size
                shape.conv(f"stage{i}.conv{j}", 3, 1)
                stage[f"conv{j}"] = nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False)
                stage[f"bn{j}"] = nn.BatchNorm2d(width)
                stage[f"act{j}"] = act()
            self.add_module(f"stage{i}", nn.Sequential(stage))
            c_in = width
        self.n_stages = len(widths)
        self.global_pool = nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, num_classes, bias=False)
        self.logit_scale = LogitScale(logit_scale)

    def forward_features(self, x: Tensor) -> Tensor:
        for i in range(1, self.n_stages + 1):
            x = getattr(self, f"stage{i}")(x)  # 28x28: (B, 24, 14, 14), (B, 48, 7, 7), ...
        return x  # (B, 96, 3, 3) with the default widths on 28x28

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.flatten(self.global_pool(x))  # (B, widths[-1])
        return self.logit_scale(self.fc(x))  # (B, num_classes) logits


@register_model("fastnet")
def fastnet(
    in_channels,
    num_classes,
    input_size,
    *,
    widths=(24, 48, 96),
    activation="gelu",
    logit_scale=1.0,
    depth=1,
) -> FastNet:
    """Fast CPU net: (conv3x3 -> maxpool -> BN -> GELU) x 3, widths 24-48-96, global max pool."""
    if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float)):
        raise CnnlabError(f"logit_scale={logit_scale!r} must be a number")
    return FastNet(
        in_channels,
        num_classes,
        input_size,
        check_ints("widths", widths),
        activation,
        float(logit_scale),
        check_int("depth", depth),
    )
