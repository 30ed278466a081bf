"""The multilayer perceptron of notebook 001.

The notebook gives rules rather than a listing: the first layer is a Linear on the flattened
image, hidden widths start at the mean of input and output sizes rounded up to a power of two
((784 + 10) / 2 -> 512), a second hidden layer "sometimes helps", dropout against overfitting,
and the resulting MNIST MLP has "over half a million parameters". Defaults: 784 -> 512 -> 256
-> 10 with ReLU and Dropout 0.2 (535,818 parameters).
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnlab.models.layers import CnnlabModel, check_ints, check_prob
from cnnlab.models.registry import register_model


class MLP(CnnlabModel):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        input_size: tuple[int, int],
        hidden: tuple[int, ...],
        dropout: float,
    ) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        width = in_channels * input_size[0] * input_size[1]
        for i, h in enumerate(hidden, start=1):
            self.add_module(f"fc{i}", nn.Linear(width, h))
            self.add_module(f"relu{i}", nn.ReLU())
            self.add_module(f"dropout{i}", nn.Dropout(dropout))
            width = h
        self.n_hidden = len(hidden)
        self.out = nn.Linear(width, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.flatten(x)  # (B, C*H*W) = (B, 784) for MNIST
        for i in range(1, self.n_hidden + 1):
            fc, relu, drop = (getattr(self, f"{n}{i}") for n in ("fc", "relu", "dropout"))
            x = drop(relu(fc(x)))  # (B, hidden[i-1])
        return x  # (B, hidden[-1]) embedding

    def forward_head(self, x: Tensor) -> Tensor:
        return self.out(x)  # (B, num_classes) logits


@register_model("mlp")
def mlp(in_channels, num_classes, input_size, *, hidden=(512, 256), dropout=0.2) -> MLP:
    """Notebook 001: flatten, Linear 512 / 256 with ReLU and Dropout 0.2, Linear 10."""
    return MLP(
        in_channels,
        num_classes,
        input_size,
        check_ints("hidden", hidden),
        check_prob("dropout", dropout),
    )
