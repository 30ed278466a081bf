"""``BatchLoader``: batches from one in-memory uint8 tensor by indexing a seeded permutation."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from cnnlab.data.dataset import ArrayDataset
from cnnlab.data.transforms import Augment, Normalizer
from cnnlab.errors import DataError

_MIX = 1_000_003  # a prime: (seed, epoch[, batch]) -> one 63-bit generator seed


def epoch_seed(seed: int, epoch: int, *more: int) -> int:
    """The generator seed for ``(seed, epoch, *more)``: a pure function, nothing global."""
    value = seed * _MIX + epoch
    for m in more:
        value = value * _MIX + m
    return value % (1 << 63)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """``torch.randperm(n)`` drawn from a generator seeded only by ``(seed, epoch)``."""
    gen = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=gen)


class BatchLoader:
    """Iterate ``(x float32 (B, C, H, W), y int64 (B,))`` batches of an :class:`ArrayDataset`.

    The order of epoch ``e`` depends only on ``(seed, e)``, so ``batches(e, start=k)`` yields
    exactly the batches ``k, k+1, ...`` of an uninterrupted epoch (exact resume).

    Sharding (``world_size > 1``) follows ``DistributedSampler``: rank ``r`` takes positions
    ``r, r + world_size, ...`` of the epoch order. With ``drop_last=False`` the order is padded
    by repeating its first samples until it divides evenly (every rank gets
    ``ceil(N / world_size)`` samples, a few seen twice) and the last batch may be short;
    with ``drop_last=True`` the tail is dropped instead (``N // world_size`` samples per rank)
    and only full batches are yielded. Either way every rank has the same number of batches.

    >>> ds = ArrayDataset(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10), "ab")
    >>> loader = BatchLoader(ds, 4, shuffle=True, seed=1)
    >>> [tuple(y.shape) for _, y in loader.batches(epoch=0)]
    [(4,), (4,), (2,)]
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        normalizer: Normalizer | None = None,
        augment: Augment | None = None,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size} must be >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"rank={rank} with world_size={world_size}: need 0 <= rank < size")
        if len(dataset) == 0:
            raise DataError(f"dataset {dataset.name!r} is empty")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.normalizer = normalizer if normalizer is not None else Normalizer("unit")
        self.augment = augment
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.channels_last = channels_last
        self.epoch = 0  # used by iter(loader); set_epoch() like DistributedSampler
        n = len(dataset)
        if drop_last:
            self.samples_per_rank = n // world_size
        else:
            self.samples_per_rank = math.ceil(n / world_size)
        if self.samples_per_rank == 0:
            raise DataError(f"{n} samples cannot be shared by world_size={world_size} ranks")

    def num_batches(self) -> int:
        """Batches per epoch on this rank (the same on every rank)."""
        if self.drop_last:
            return self.samples_per_rank // self.batch_size
        return math.ceil(self.samples_per_rank / self.batch_size)

    __len__ = num_batches

    def indices(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for ``epoch``, in batch order."""
        n = len(self.dataset)
        order = epoch_permutation(n, self.seed, epoch) if self.shuffle else torch.arange(n)
        total = self.samples_per_rank * self.world_size
        if total > n:  # pad by wrapping around, as DistributedSampler does
            order = torch.cat([order, order.repeat(math.ceil(total / n))[: total - n]])
        return order[:total][self.rank :: self.world_size]

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch`` from batch index ``start`` on."""
        count = self.num_batches()
        if not 0 <= start <= count:
            raise DataError(f"start={start} outside 0..{count} batches of epoch {epoch}")
        idx = self.indices(epoch)
        images, labels = self.dataset.images, self.dataset.labels
        for k in range(start, count):
            sel = idx[k * self.batch_size : (k + 1) * self.batch_size]
            x = images.index_select(0, sel)
            if self.augment is not None:
                gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, k, self.rank))
                x = self.normalizer.apply_255(self.augment(x.float(), gen))
            else:
                x = self.normalizer(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, labels.index_select(0, sel)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch ``iter(loader)`` walks (like ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(self.epoch)
