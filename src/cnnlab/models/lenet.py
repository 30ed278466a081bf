"""LeNet-5 (LeCun et al., 1998) for 28x28 inputs.

C1 6@5x5 with padding 2 (the 28x28 digit sits in the paper's 32x32 frame), S2 2x2 subsampling,
C3 16@5x5, S4, F5 120, F6 84, output. The paper's squashing function and average subsampling are
the defaults (tanh / avg); ``activation="relu", pool="max"`` gives the common modern variant.
61,706 parameters for 1x28x28 -> 10.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.models.layers import CnnlabModel, ShapeTracker, check_choice
from cnnlab.models.registry import register_model

_ACTS = {"tanh": nn.Tanh, "relu": nn.ReLU}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(CnnlabModel):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: tuple[int, int],
        activation: str,
        pool: str,
    ) -> None:
        super().__init__()
        act = _ACTS[check_choice("activation", activation, tuple(_ACTS))]
        pool_cls = _POOLS[check_choice("pool", pool, tuple(_POOLS))]
        shape = ShapeTracker("lenet5", input_size)
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        shape.conv("conv1", 5, 2)
        self.act1 = act()
        self.pool1 = pool_cls(2)
        shape.pool("pool1", 2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        shape.conv("conv2", 5)
        self.act2 = act()
        self.pool2 = pool_cls(2)
        shape.pool("pool2", 2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * shape.numel_per_channel, 120)  # 400 = 16*5*5 for 28x28
        self.act3 = act()
        self.fc2 = nn.Linear(120, 84)
        self.act4 = act()
        self.fc3 = nn.Linear(84, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.pool1(self.act1(self.conv1(x)))  # (B, 6, 14, 14) for 28x28
        return self.pool2(self.act2(self.conv2(x)))  # (B, 16, 5, 5)

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.flatten(x)  # (B, 400)
        x = self.act3(self.fc1(x))  # (B, 120)
        x = self.act4(self.fc2(x))  # (B, 84)
        return self.fc3(x)  # (B, num_classes) logits


@register_model("lenet5")
def lenet5(in_channels, num_classes, input_size, *, activation="tanh", pool="avg") -> LeNet5:
    """LeNet-5: conv 6@5x5 (pad 2), pool, conv 16@5x5, pool, Dense 120/84 (tanh, avg pool)."""
    return LeNet5(in_channels, num_classes, input_size, activation, pool)
