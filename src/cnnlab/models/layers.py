"""Building blocks shared by the model families: shape arithmetic and the model base class.

Flatten sizes are computed, never hard-coded: each model walks its layer stack with a
:class:`ShapeTracker`, which applies the convolution output-size formula and raises a
:class:`~cnnlab.errors.CnnlabError` naming the input size when a layer would get an empty map.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cnnlab.errors import CnnlabError

# Layers whose outputs are "feature maps" in the viz sense (see CnnlabModel.feature_layers).
FEATURE_LAYER_TYPES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def conv_out(n: int, k: int, p: int = 0, s: int = 1, d: int = 1) -> int:
    """Output length of a convolution or pooling window along one axis (floor mode).

    ``(n + 2p - d(k-1) - 1) // s + 1``; may be <= 0 when the input is too small, which the caller
    turns into an error naming its layer. Kept local (not ``cnnlab.ops.shapes``) so the models
    never depend on the NumPy teaching code and keep torch's floor semantics exactly.

    >>> conv_out(28, 3), conv_out(26, 2, s=2), conv_out(28, 5, p=2)
    (26, 13, 28)
    """
    if k < 1 or s < 1 or d < 1 or p < 0:
        raise CnnlabError(f"invalid window kernel={k}, padding={p}, stride={s}, dilation={d}")
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def same_padding(k: int, d: int = 1) -> int:
    """Symmetric zero padding that keeps the size for stride 1 (Keras ``padding="same"``).

    >>> same_padding(7), same_padding(3), same_padding(3, d=2)
    (3, 1, 2)
    """
    if (d * (k - 1)) % 2:
        raise CnnlabError(f"'same' padding needs an odd effective kernel, got kernel={k}")
    return d * (k - 1) // 2


def to_hw(input_size: int | Sequence[int]) -> tuple[int, int]:
    """``28`` -> ``(28, 28)``; ``(32, 28)`` -> ``(32, 28)``; anything else is an error."""
    if isinstance(input_size, bool):
        raise CnnlabError(f"input_size={input_size!r} must be an int or (height, width)")
    if isinstance(input_size, int):
        hw = (input_size, input_size)
    elif (
        isinstance(input_size, Sequence)
        and len(input_size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in input_size)
    ):
        hw = (int(input_size[0]), int(input_size[1]))
    else:
        raise CnnlabError(f"input_size={input_size!r} must be an int or (height, width)")
    if min(hw) < 1:
        raise CnnlabError(f"input_size={input_size!r} must be positive")
    return hw


class ShapeTracker:
    """Follows (H, W) through a layer stack while a model is being built.

    >>> t = ShapeTracker("tutorial_cnn", 28)
    >>> t.conv("conv1", 3); t.pool("pool1", 2)
    (26, 26)
    (13, 13)
    """

    def __init__(self, model_name: str, input_size: int | Sequence[int]) -> None:
        self.model_name = model_name
        self.input_hw = to_hw(input_size)
        self.hw = self.input_hw

    def conv(self, layer: str, k: int, p: int = 0, s: int = 1, d: int = 1) -> tuple[int, int]:
        """Apply a k x k window (conv or pool) and return the new (H, W)."""
        new = (conv_out(self.hw[0], k, p, s, d), conv_out(self.hw[1], k, p, s, d))
        if min(new) < 1:
            h, w = self.input_hw
            raise CnnlabError(
                f"input_size={h}x{w} is too small for {self.model_name}: {layer} "
                f"(kernel {k}, padding {p}, stride {s}) gets a {self.hw[0]}x{self.hw[1]} map"
            )
        self.hw = new
        return new

    def pool(self, layer: str, k: int, s: int | None = None) -> tuple[int, int]:
        """Apply a pooling window (stride defaults to the kernel, like torch and Keras)."""
        return self.conv(layer, k, 0, s or k, 1)

    @property
    def numel_per_channel(self) -> int:
        return self.hw[0] * self.hw[1]


class CnnlabModel(nn.Module):
    """Base class: ``forward = forward_head(forward_features(x))``; returns logits.

    Subclasses define ``forward_features`` (input -> last feature map, before flatten) and
    ``forward_head`` (feature map -> logits). ``create_model`` sets ``cnnlab_args``.
    """

    cnnlab_args: dict

    def forward_features(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def upgrade_state(self, state: dict, flatten_order: str | None) -> dict:
        """Convert a state dict saved by an older layout (``flatten_order`` None: not recorded)
        to this model's; the default keeps it as is."""
        return state

    def feature_layers(self) -> list[tuple[str, nn.Module]]:
        """Conv and pooling layers in forward order, as ``(qualified name, module)``.

        Hook these to get "feature maps of every conv/pool layer". A conv's output is taken
        before its activation (activations are separate modules).

        >>> from cnnlab.models import create_model
        >>> [n for n, _ in create_model("model_a").feature_layers()]
        ['cnn1', 'pool1', 'cnn2', 'pool2']
        """
        return [(n, m) for n, m in self.named_modules() if isinstance(m, FEATURE_LAYER_TYPES)]


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """A model hyper-parameter that must be an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CnnlabError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def check_prob(name: str, value: object) -> float:
    """A dropout probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise CnnlabError(f"{name}={value!r} must be a number in [0, 1)")
    return float(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise CnnlabError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return str(value)


def check_ints(name: str, value: object, minimum: int = 1) -> tuple[int, ...]:
    """A non-empty list/tuple of ints >= minimum (e.g. layer widths)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise CnnlabError(f"{name}={value!r} must be a non-empty list of integers")
    return tuple(check_int(name, v, minimum) for v in value)
