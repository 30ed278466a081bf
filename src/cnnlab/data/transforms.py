"""Per-batch transforms: ``Normalizer`` (uint8 -> float32) and ``Augment`` (shifts/rotations)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.errors import DataError

NORMALIZER_KINDS = ("unit", "half", "meanstd", "pixel")
PIXEL_EPS = 1e-7  # notebook 004: X_std + 1e-7, so constant (border) pixels map to 0


def _channel_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std on a 0..1 scale, exact: from a 256-bin histogram per channel."""
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        p = hist / hist.sum()
        mean = (p * values).sum()
        means.append(mean)
        stds.append(((p * (values - mean) ** 2).sum()).sqrt())
    return torch.stack(means), torch.stack(stds)


def _pixel_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel mean and std (population) on a 0..1 scale, shape (C, H, W).

    Float32 sums per chunk (fast), accumulated in float64 across chunks.
    """
    flat = images.reshape(len(images), -1)
    s1 = torch.zeros(flat.shape[1], dtype=torch.float64)
    s2 = torch.zeros_like(s1)
    for chunk in torch.split(flat, 4096):
        x = chunk.float()
        s1 += x.sum(0).double()
        s2 += (x * x).sum(0).double()
    n = len(images)
    mean = s1 / n
    var = (s2 / n - mean * mean).clamp_min(0.0)
    shape = images.shape[1:]
    return (mean / 255.0).view(shape), (var.sqrt() / 255.0).view(shape)


class Normalizer:
    """Map uint8 images (0..255) to float32 model inputs.

    Kinds: ``unit`` = x/255 (ToTensor); ``half`` = ``Normalize(0.5, 0.5)`` -> [-1, 1]
    (notebook 001); ``meanstd`` = per-channel dataset mean/std; ``pixel`` = per-pixel
    standardisation (notebook 004). ``meanstd`` and ``pixel`` need :meth:`fit` on the training
    split. Floating-point input is taken to be already on a 0..1 scale.

    >>> norm = Normalizer("half")
    >>> norm(torch.tensor([[[[0, 255]]]], dtype=torch.uint8)).tolist()
    [[[[-1.0, 1.0]]]]
    """

    def __init__(self, kind: str = "unit") -> None:
        if kind not in NORMALIZER_KINDS:
            raise DataError(f"unknown normalizer kind {kind!r} (use {', '.join(NORMALIZER_KINDS)})")
        self.kind = kind
        self.mean: torch.Tensor | None = None  # 0..1 scale, broadcastable to (C, H, W)
        self.std: torch.Tensor | None = None
        if kind == "unit":
            self._set(torch.zeros(1, 1, 1), torch.ones(1, 1, 1))
        elif kind == "half":
            self._set(torch.full((1, 1, 1), 0.5), torch.full((1, 1, 1), 0.5))

    def _set(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean = mean.to(torch.float32)
        self.std = std.to(torch.float32)
        # y = (x/255 - mean)/std = x * scale + shift: two in-place passes over the batch
        self._scale = (1.0 / (255.0 * self.std.double())).float()
        self._shift = (-self.mean.double() / self.std.double()).float()

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit(self, images: torch.Tensor) -> Normalizer:
        """Fit mean/std on uint8 training images (N, C, H, W); no-op for ``unit``/``half``."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise DataError(
                f"Normalizer.fit needs uint8 (N, C, H, W) images, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if len(images) == 0:
            raise DataError(f"Normalizer({self.kind!r}).fit got 0 images")
        if self.kind == "meanstd":
            mean, std = _channel_moments(images)
            self._set(mean.view(-1, 1, 1), std.clamp_min(PIXEL_EPS).view(-1, 1, 1))
        elif self.kind == "pixel":
            mean, std = _pixel_moments(images)
            self._set(mean, std + PIXEL_EPS)
        return self

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Normalise a batch: uint8 (0..255) or floating (0..1), (B, C, H, W) or (C, H, W)."""
        self._check(batch)
        if batch.dtype == torch.uint8:
            return batch.float().mul_(self._scale).add_(self._shift)
        return batch.float().mul(self._scale * 255.0).add_(self._shift)

    def apply_255(self, batch: torch.Tensor) -> torch.Tensor:
        """Normalise a float batch on the 0..255 scale (the loader's augmented batches)."""
        self._check(batch)
        return batch.mul(self._scale).add_(self._shift)

    def _check(self, batch: torch.Tensor) -> None:
        if not self.fitted:
            raise DataError(f"Normalizer({self.kind!r}) used before fit(training images)")
        shape = tuple(self.mean.shape)  # (1, 1, 1), (C, 1, 1) or (C, H, W)
        got = tuple(batch.shape[-3:])
        if batch.dim() < 3 or any(s != 1 and s != g for s, g in zip(shape, got, strict=True)):
            raise DataError(
                f"Normalizer({self.kind!r}) fitted on images of shape {shape} cannot normalise "
                f"a batch of shape {tuple(batch.shape)}"
            )

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back to the 0..1 scale (for pictures of model inputs)."""
        return x * self.std + self.mean

    def state_dict(self) -> dict:
        """Plain floats/lists: safe for JSON and ``torch.load(weights_only=True)``."""
        state: dict = {"kind": self.kind}
        if self.kind in ("meanstd", "pixel") and self.fitted:
            state["mean"] = self.mean.tolist()
            state["std"] = self.std.tolist()
        return state

    @classmethod
    def from_state(cls, state: dict) -> Normalizer:
        """Rebuild from :meth:`state_dict` output."""
        norm = cls(str(state.get("kind", "")))
        if norm.kind in ("meanstd", "pixel"):
            if "mean" not in state or "std" not in state:
                raise DataError(f"Normalizer state for {norm.kind!r} lacks mean/std")
            try:
                mean = torch.tensor(state["mean"], dtype=torch.float64)
                std = torch.tensor(state["std"], dtype=torch.float64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"Normalizer state for {norm.kind!r} is malformed: {exc}") from None
            if mean.dim() != 3 or mean.shape != std.shape or not bool((std > 0).all()):
                raise DataError(
                    f"Normalizer state for {norm.kind!r} needs mean/std of one (C, H, W) shape "
                    f"with std > 0, got {tuple(mean.shape)} / {tuple(std.shape)}"
                )
            norm._set(mean, std)
        return norm

    def __repr__(self) -> str:
        return f"Normalizer({self.kind!r}, fitted={self.fitted})"


def _shift_exact(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, s: int) -> torch.Tensor:
    """Shift each image by whole pixels (``dx``, ``dy`` in ``-s..s``), zero fill: one gather.

    About twice as fast as ``grid_sample`` and bit-exact (no interpolation weights).
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (s, s, s, s))
    wide = w + 2 * s
    base = torch.arange(h)[:, None] * wide + torch.arange(w)[None, :]  # (h, w) in padded coords
    offset = (s - dy) * wide + (s - dx)  # output (i, j) reads input (i - dy, j - dx)
    index = (base[None] + offset[:, None, None]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.view(b, c, -1).gather(2, index).view(b, c, h, w)


class Augment:
    """Random per-sample shifts (whole pixels, up to ``shift``) and rotations (up to ``rotate``
    degrees), applied to a float batch with one ``affine_grid``/``grid_sample`` call, then
    (``flip``) a left-right mirror of half the images (clothes, not digits), then (``erase``,
    a probability) random erasing: a rectangle of 2-40% of the image, aspect ratio 0.3-3.3, set
    to 0 (Zhong et al. 2017, who report it helps most on Fashion-MNIST).

    Empty areas are filled with 0 (black background, as in MNIST/Fashion-MNIST); apply it
    before normalisation.

    >>> x = torch.rand(4, 1, 28, 28)
    >>> Augment(shift=2)(x, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 1, 28, 28])
    """

    ERASE_AREA = (0.02, 0.4)  # fraction of the image a random-erasing rectangle covers
    ERASE_RATIO = 0.3  # its height/width lies in [0.3, 1/0.3]

    def __init__(
        self, shift: int = 2, rotate: float = 0.0, flip: bool = False, erase: float = 0.0
    ) -> None:
        if shift < 0 or rotate < 0:
            raise DataError(f"Augment(shift={shift}, rotate={rotate}): both must be >= 0")
        if not 0.0 <= erase <= 1.0:
            raise DataError(f"Augment(erase={erase}): a probability in [0, 1]")
        self.shift = int(shift)
        self.rotate = float(rotate)
        self.flip = bool(flip)
        self.erase = float(erase)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self._move(x, generator)
        if self.flip:
            mirror = torch.rand(len(x), generator=generator) < 0.5
            x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(3), x)
        if self.erase > 0:
            x = x.masked_fill(self._erase_mask(x.shape, generator), 0.0)
        return x

    def _erase_mask(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        """(B, 1, H, W) True inside each chosen image's random rectangle."""
        b, _, h, w = shape
        low, high = self.ERASE_AREA
        area = (torch.rand(b, generator=generator) * (high - low) + low) * (h * w)
        log_r = math.log(self.ERASE_RATIO)
        ratio = (torch.rand(b, generator=generator) * (-2 * log_r) + log_r).exp()  # h / w
        eh = (area * ratio).sqrt().round().clamp(1, h)
        ew = (area / ratio).sqrt().round().clamp(1, w)
        top = (torch.rand(b, generator=generator) * (h - eh + 1)).floor()
        left = (torch.rand(b, generator=generator) * (w - ew + 1)).floor()
        chosen = torch.rand(b, generator=generator) < self.erase
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)

        def inside(pos: torch.Tensor, start: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
            start, size = start.view(-1, 1, 1), size.view(-1, 1, 1)
            return (pos >= start) & (pos < start + size)

        box = inside(rows, top, eh) & inside(cols, left, ew) & chosen.view(-1, 1, 1)
        return box.unsqueeze(1)

    def _move(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        if self.shift == 0 and self.rotate == 0:
            return x
        s = self.shift
        dx = torch.randint(-s, s + 1, (b,), generator=generator)
        dy = torch.randint(-s, s + 1, (b,), generator=generator)
        if self.rotate == 0:
            return _shift_exact(x, dx, dy, s)
        angle = (torch.rand(b, generator=generator, dtype=x.dtype) * 2 - 1) * (
            self.rotate * math.pi / 180
        )
        cos, sin = angle.cos(), angle.sin()
        # theta maps output to input coordinates (normalised to [-1, 1]); shifting the picture
        # by +dx pixels samples the input at x - dx, i.e. -2*dx/w in normalised units.
        theta = torch.stack(
            [
                torch.stack([cos, -sin, -2 * dx.to(x.dtype) / w], 1),
                torch.stack([sin, cos, -2 * dy.to(x.dtype) / h], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def state_dict(self) -> dict:
        return {"shift": self.shift, "rotate": self.rotate, "flip": self.flip, "erase": self.erase}

    def __repr__(self) -> str:
        return (
            f"Augment(shift={self.shift}, rotate={self.rotate}, flip={self.flip}, "
            f"erase={self.erase})"
        )
