"""Models A, B and C of notebook 002: two 5x5 convs (16, 32), two 2x2 pools, one linear readout.

- ``model_a``: same padding (p=2), max pooling (98% in the notebook).
- ``model_b``: same padding, average pooling (93%).
- ``model_c``: valid padding (p=0). The notebook's text says max pooling, but the code that
  produced its 97% uses ``nn.AvgPool2d``; we follow the code and expose ``pool="max"`` for the
  described variant.

Parameter order and shapes match the notebook: ``[16,1,5,5], [16], [32,16,5,5], [32],
[10,1568], [10]`` for model A on 28x28.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.models.layers import CnnlabModel, ShapeTracker, check_choice
from cnnlab.models.registry import register_model

_POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class Notebook002CNN(CnnlabModel):
    def __init__(
        self,
        name: str,
        in_channels: int,
        num_classes: int,
        input_size: tuple[int, int],
        padding: int,
        pool: str,
    ) -> None:
        super().__init__()
        shape = ShapeTracker(name, input_size)
        pool_cls = _POOLS[check_choice("pool", pool, tuple(_POOLS))]
        self.cnn1 = nn.Conv2d(in_channels, 16, kernel_size=5, stride=1, padding=padding)
        shape.conv("cnn1", 5, padding)
        self.relu1 = nn.ReLU()
        self.pool1 = pool_cls(kernel_size=2)
        shape.pool("pool1", 2)
        self.cnn2 = nn.Conv2d(16, 32, kernel_size=5, stride=1, padding=padding)
        shape.conv("cnn2", 5, padding)
        self.relu2 = nn.ReLU()
        self.pool2 = pool_cls(kernel_size=2)
        shape.pool("pool2", 2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * shape.numel_per_channel, num_classes)  # 1568 = 32*7*7 for A

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.pool1(self.relu1(self.cnn1(x)))  # A/B: (B, 16, 14, 14); C: (B, 16, 12, 12)
        return self.pool2(self.relu2(self.cnn2(x)))  # A/B: (B, 32, 7, 7); C: (B, 32, 4, 4)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc1(self.flatten(x))  # (B, num_classes) logits


@register_model("model_a")
def model_a(in_channels, num_classes, input_size, *, pool="max") -> Notebook002CNN:
    """Notebook 002 model A: 2 conv 5x5 same padding (16, 32), 2 max pools, 1 linear."""
    return Notebook002CNN("model_a", in_channels, num_classes, input_size, 2, pool)


@register_model("model_b")
def model_b(in_channels, num_classes, input_size, *, pool="avg") -> Notebook002CNN:
    """Notebook 002 model B: like model A with average pooling."""
    return Notebook002CNN("model_b", in_channels, num_classes, input_size, 2, pool)


@register_model("model_c")
def model_c(in_channels, num_classes, input_size, *, pool="avg") -> Notebook002CNN:
    """Notebook 002 model C: valid padding (avg pools, as the notebook's code runs it)."""
    return Notebook002CNN("model_c", in_channels, num_classes, input_size, 0, pool)
