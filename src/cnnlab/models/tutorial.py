"""The tutorial CNN of notebooks 000 (PyTorch) and 003 (Keras).

Conv 32-64-64 (3x3, valid), max pools after the first two, Dense 64 + ReLU, Dropout 0.5, 10
logits. Notebook 000 puts the dropout after the hidden Dense layer's ReLU and before the output
layer; notebook 003's Keras version has no dropout (``dropout=0`` reproduces it).

``pool_first=True`` applies each max pool before its ReLU. The two commute (max is monotone and
ReLU is a monotone clamp), so outputs and gradients are bit-identical to the notebook order while
the ReLU and its backward touch a quarter of the pixels: the fast recipes use it (README.md,
"Training speed"). Hooks then see the ReLU outputs at the pooled size.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.errors import CnnlabError
from cnnlab.models.layers import CnnlabModel, ShapeTracker, check_int, check_prob
from cnnlab.models.registry import register_model


class TutorialCNN(CnnlabModel):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: tuple[int, int],
        hidden: int = 64,
        dropout: float = 0.5,
        pool_first: bool = False,
    ) -> None:
        super().__init__()
        self.pool_first = pool_first
        shape = ShapeTracker("tutorial_cnn", input_size)
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3)
        shape.conv("conv1", 3)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        shape.pool("pool1", 2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        shape.conv("conv2", 3)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        shape.pool("pool2", 2)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        shape.conv("conv3", 3)
        self.relu3 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * shape.numel_per_channel, hidden)  # 576 for 28x28
        self.relu4 = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        if self.pool_first:  # same values, a quarter of the ReLU work
            x = self.relu1(self.pool1(self.conv1(x)))
            x = self.relu2(self.pool2(self.conv2(x)))
        else:
            x = self.pool1(self.relu1(self.conv1(x)))  # (B, 32, 13, 13) for 28x28
            x = self.pool2(self.relu2(self.conv2(x)))  # (B, 64, 5, 5)
        return self.relu3(self.conv3(x))  # (B, 64, 3, 3)

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.flatten(x)  # (B, 576)
        x = self.dropout(self.relu4(self.fc1(x)))  # (B, 64)
        return self.fc2(x)  # (B, num_classes) logits


@register_model("tutorial_cnn")
def tutorial_cnn(
    in_channels: int,
    num_classes: int,
    input_size: tuple[int, int],
    *,
    hidden=64,
    dropout=0.5,
    pool_first=False,
) -> TutorialCNN:
    """Notebooks 000/003: Conv 32-64-64 3x3 valid, max pools, Dense 64, Dropout 0.5."""
    if not isinstance(pool_first, bool):
        raise CnnlabError(f"pool_first={pool_first!r} must be true or false")
    return TutorialCNN(
        in_channels,
        num_classes,
        input_size,
        hidden=check_int("hidden", hidden),
        dropout=check_prob("dropout", dropout),
        pool_first=pool_first,
    )
