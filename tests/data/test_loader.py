"""BatchLoader: determinism, exact resume, DistributedSampler-equal sharding, speed paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from cnnlab.data import ArrayDataset, Augment, BatchLoader, Normalizer, epoch_permutation
from cnnlab.errors import DataError


def _toy(n: int = 103) -> ArrayDataset:
    images = torch.arange(n, dtype=torch.int64).remainder(256).to(torch.uint8)
    images = images.view(n, 1, 1, 1).expand(n, 1, 4, 4).contiguous()
    return ArrayDataset(images, torch.arange(n) % 10, tuple("0123456789"), "toy")


def _labels(loader: BatchLoader, epoch: int, start: int = 0) -> list[int]:
    return [int(v) for _, y in loader.batches(epoch, start) for v in y]


def test_one_epoch_visits_every_sample_once():
    ds = ArrayDataset(
        torch.zeros(103, 1, 2, 2, dtype=torch.uint8), torch.arange(103), ("a",), "ids"
    )
    loader = BatchLoader(ds, 10, shuffle=True, seed=5)
    seen = _labels(loader, 0)
    assert sorted(seen) == list(range(103)) and seen != list(range(103))
    assert loader.num_batches() == len(loader) == 11
    assert _labels(BatchLoader(ds, 10, shuffle=False), 0) == list(range(103))


def test_order_depends_only_on_seed_and_epoch():
    ds = ArrayDataset(torch.zeros(50, 1, 2, 2, dtype=torch.uint8), torch.arange(50), ("a",))
    a, b = BatchLoader(ds, 7, shuffle=True, seed=1), BatchLoader(ds, 7, shuffle=True, seed=1)
    torch.manual_seed(123)  # global RNG state must not matter
    first = _labels(a, 3)
    torch.manual_seed(999)
    assert _labels(b, 3) == first == epoch_permutation(50, 1, 3).tolist()
    assert _labels(a, 4) != first
    assert _labels(BatchLoader(ds, 7, shuffle=True, seed=2), 3) != first


@pytest.mark.parametrize("augment", [None, Augment(shift=1, rotate=5)])
def test_resume_at_batch_k_is_exact(augment):
    ds = _toy()
    loader = BatchLoader(ds, 16, shuffle=True, seed=7, augment=augment)
    full = list(loader.batches(2))
    resumed = list(BatchLoader(ds, 16, shuffle=True, seed=7, augment=augment).batches(2, start=4))
    assert len(resumed) == len(full) - 4
    for (x1, y1), (x2, y2) in zip(full[4:], resumed, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_batches_are_normalised_from_uint8():
    ds = _toy()
    norm = Normalizer("half")
    x, y = next(BatchLoader(ds, 8, shuffle=False, normalizer=norm).batches(0))
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, norm(ds.images[:8]))
    x_unit, _ = next(BatchLoader(ds, 8, shuffle=False).batches(0))  # default: unit
    assert torch.allclose(x_unit, ds.images[:8].float() / 255, rtol=0, atol=1e-7)


def test_channels_last():
    ds = ArrayDataset(
        torch.randint(0, 256, (20, 3, 5, 5), dtype=torch.uint8), torch.zeros(20).long(), ("a",)
    )
    x, _ = next(BatchLoader(ds, 4, shuffle=False, channels_last=True).batches(0))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x, ds.images[:4].float() / 255, rtol=0, atol=1e-7)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_sharding_equals_distributed_sampler(world_size, drop_last):
    ds = _toy(103)
    counts = set()
    for rank in range(world_size):
        ours = BatchLoader(
            ds, 5, shuffle=False, rank=rank, world_size=world_size, drop_last=drop_last
        )
        ref = DistributedSampler(
            ds, num_replicas=world_size, rank=rank, shuffle=False, drop_last=drop_last
        )
        assert ours.indices(0).tolist() == list(ref)
        counts.add(ours.num_batches())
    assert len(counts) == 1  # every rank runs the same number of steps


def test_shards_disjoint_and_cover_the_epoch():
    ds = _toy(103)
    shards = [
        BatchLoader(ds, 8, shuffle=True, seed=3, rank=r, world_size=4, drop_last=True).indices(1)
        for r in range(4)
    ]
    union = torch.cat(shards)
    assert len(union) == len(set(union.tolist())) == 100  # 103 // 4 * 4, disjoint
    padded = [
        BatchLoader(ds, 8, shuffle=True, seed=3, rank=r, world_size=4).indices(1) for r in range(4)
    ]
    assert set(torch.cat(padded).tolist()) == set(range(103))  # padding repeats 1 sample
    assert all(len(p) == 26 for p in padded)
    # the shards interleave one shared epoch order, like DistributedSampler
    order = epoch_permutation(103, 3, 1)
    assert shards[2].tolist() == order[:100][2::4].tolist()


def test_augmentation_is_per_batch_and_seeded():
    ds = ArrayDataset(
        torch.randint(0, 256, (64, 1, 12, 12), dtype=torch.uint8), torch.zeros(64).long(), ("a",)
    )
    make = lambda seed: BatchLoader(ds, 32, shuffle=False, seed=seed, augment=Augment(2))  # noqa: E731
    a, b = list(make(0).batches(0)), list(make(0).batches(0))
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, b, strict=True))
    c = list(make(0).batches(1))
    assert not torch.equal(a[0][0], c[0][0])  # a new epoch draws new shifts
    plain = next(BatchLoader(ds, 32, shuffle=False).batches(0))[0]
    assert not torch.equal(a[0][0], plain)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size=0 must be >= 1"),
        ({"rank": 2, "world_size": 2}, "rank=2 with world_size=2: need 0 <= rank < size"),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs = {"batch_size": 4, **kwargs}
    with pytest.raises(DataError) as info:
        BatchLoader(_toy(), shuffle=True, **kwargs)
    assert str(info.value) == message


def test_bad_start():
    loader = BatchLoader(_toy(20), 8, shuffle=True)
    with pytest.raises(DataError) as info:
        list(loader.batches(0, start=5))
    assert str(info.value) == "start=5 outside 0..3 batches of epoch 0"


def test_mnist_epoch_shapes(mnist_train):
    norm = Normalizer("pixel").fit(mnist_train.images)
    loader = BatchLoader(mnist_train, 256, shuffle=True, seed=0, normalizer=norm)
    assert loader.num_batches() == 235
    (x_last, y_last), *_ = list(loader.batches(0, start=234))  # resume at the last batch
    assert len(y_last) == 60000 - 234 * 256
    x, y = next(loader.batches(0))
    assert x.shape == (256, 1, 28, 28) and np.isfinite(x.numpy()).all()
    order = loader.indices(0)
    assert torch.equal(y, mnist_train.labels[order[:256]])
    assert torch.equal(x_last, norm(mnist_train.images[order[234 * 256 :]]))
