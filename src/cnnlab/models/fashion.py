"""The Fashion-MNIST CNN of notebook 004 (Géron's deeper CNN).

``DefaultConv2D = partial(Conv2D, kernel_size=3, activation="relu", padding="SAME")``:
64@7x7, max pool, 128, 128, max pool, 256, 256, max pool, Flatten, Dense 128, Dropout 0.5,
Dense 64, Dropout 0.5, Dense 10. Keras pools floor (valid), so 28 -> 14 -> 7 -> 3.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.models.layers import CnnlabModel, ShapeTracker, check_prob, same_padding
from cnnlab.models.registry import register_model


class FashionCNN(CnnlabModel):
    def __init__(
        self, in_channels: int, num_classes: int, input_size: tuple[int, int], dropout: float
    ) -> None:
        super().__init__()
        shape = ShapeTracker("fashion_cnn", input_size)

        def conv(name: str, c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
            shape.conv(name, k, same_padding(k))
            return nn.Conv2d(c_in, c_out, kernel_size=k, padding=same_padding(k))

        def pool(name: str) -> nn.MaxPool2d:
            shape.pool(name, 2)
            return nn.MaxPool2d(2)

        self.conv1 = conv("conv1", in_channels, 64, k=7)
        self.relu1 = nn.ReLU()
        self.pool1 = pool("pool1")
        self.conv2 = conv("conv2", 64, 128)
        self.relu2 = nn.ReLU()
        self.conv3 = conv("conv3", 128, 128)
        self.relu3 = nn.ReLU()
        self.pool2 = pool("pool2")
        self.conv4 = conv("conv4", 128, 256)
        self.relu4 = nn.ReLU()
        self.conv5 = conv("conv5", 256, 256)
        self.relu5 = nn.ReLU()
        self.pool3 = pool("pool3")
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(256 * shape.numel_per_channel, 128)  # 2304 = 256*3*3 for 28x28
        self.relu6 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(128, 64)
        self.relu7 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout)
        self.fc3 = nn.Linear(64, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))  # (B, 64, 14, 14) for 28x28
        x = self.relu2(self.conv2(x))  # (B, 128, 14, 14)
        x = self.pool2(self.relu3(self.conv3(x)))  # (B, 128, 7, 7)
        x = self.relu4(self.conv4(x))  # (B, 256, 7, 7)
        return self.pool3(self.relu5(self.conv5(x)))  # (B, 256, 3, 3)

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.flatten(x)  # (B, 2304)
        x = self.dropout1(self.relu6(self.fc1(x)))  # (B, 128)
        x = self.dropout2(self.relu7(self.fc2(x)))  # (B, 64)
        return self.fc3(x)  # (B, num_classes) logits


@register_model("fashion_cnn")
def fashion_cnn(in_channels, num_classes, input_size, *, dropout=0.5) -> FashionCNN:
    """Notebook 004: 64@7x7 same, 128, 128, 256, 256 (3x3 same), 3 max pools, Dense 128/64."""
    return FashionCNN(in_channels, num_classes, input_size, check_prob("dropout", dropout))
