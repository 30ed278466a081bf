"""Train/validation splits: random (seeded), last-N, stratified; saved with the run as lists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.errors import DataError

SPLIT_KINDS = ("random", "last", "stratified")


@dataclass(frozen=True)
class Split:
    """Indices into a dataset: ``train`` and ``val`` (sorted int64 arrays, disjoint).

    >>> s = make_split(np.arange(10) % 2, "last", val_size=3)
    >>> s.val.tolist(), Split.from_dict(s.to_dict()) == s
    ([7, 8, 9], True)
    """

    train: np.ndarray
    val: np.ndarray
    kind: str = "random"
    seed: int = 0

    def to_dict(self) -> dict:
        """Plain lists/ints/strs: safe for JSON and ``torch.load(weights_only=True)``."""
        return {
            "kind": self.kind,
            "seed": int(self.seed),
            "train": self.train.tolist(),
            "val": self.val.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        """Rebuild a split saved with :meth:`to_dict` (the index lists may also be arrays or
        tensors); fails on overlapping or missing lists."""
        try:
            train = np.asarray(d["train"], dtype=np.int64).reshape(-1)
            val = np.asarray(d["val"], dtype=np.int64).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"invalid saved split: {exc!r}") from None
        if (train.size and train.min() < 0) or (val.size and val.min() < 0):
            raise DataError("invalid saved split: negative index")
        if np.intersect1d(train, val).size:
            raise DataError("invalid saved split: train and val indices overlap")
        return cls(train, val, str(d.get("kind", "random")), int(d.get("seed", 0)))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Split)
            and np.array_equal(self.train, other.train)
            and np.array_equal(self.val, other.val)
            and (self.kind, self.seed) == (other.kind, other.seed)
        )

    __hash__ = None  # type: ignore[assignment]


def _val_count(n: int, val_fraction: float, val_size: int | None) -> int:
    if val_size is None:
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"val_fraction={val_fraction} must be between 0 and 1 (exclusive)")
        val_size = int(round(n * val_fraction))
    if not 0 < val_size < n:
        raise DataError(f"val_size={val_size} for {n} samples: need 0 < val_size < {n}")
    return int(val_size)


def _stratified_val(labels: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """Per-class shares of ``n_val`` (largest remainder, so they sum exactly), drawn at random."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (n_val / len(labels))
    take = np.floor(exact).astype(np.int64)
    extra = n_val - int(take.sum())
    take[np.argsort(-(exact - take), kind="stable")[:extra]] += 1
    picked = []
    for cls, k in zip(classes, take, strict=True):
        members = np.flatnonzero(labels == cls)
        picked.append(rng.permutation(members)[:k])
    return np.concatenate(picked)


def make_split(
    labels,
    kind: str = "random",
    val_fraction: float = 0.2,
    val_size: int | None = None,
    seed: int = 0,
) -> Split:
    """Split ``range(len(labels))`` into train and validation indices.

    Args:
        labels: per-sample labels (tensor, array or list); only ``stratified`` reads the values.
        kind: ``random`` (seeded shuffle, notebook 001's 80/20), ``last`` (the last
            ``val_size`` samples, notebook 004 keeps the last 5,000), ``stratified`` (each
            class in proportion, seeded).
        val_fraction: share of samples for validation when ``val_size`` is None.
        val_size: exact number of validation samples (overrides ``val_fraction``).
        seed: seed of ``numpy.random.default_rng`` for random/stratified.

    >>> s = make_split(list(range(10)), "random", seed=1)
    >>> len(s.train), len(s.val)
    (8, 2)
    """
    labels = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).reshape(-1)
    n = len(labels)
    if kind not in SPLIT_KINDS:
        raise DataError(f"unknown split kind {kind!r} (use {', '.join(SPLIT_KINDS)})")
    n_val = _val_count(n, val_fraction, val_size)
    rng = np.random.default_rng(seed)
    if kind == "last":
        val = np.arange(n - n_val, n)
    elif kind == "random":
        val = rng.permutation(n)[:n_val]
    else:
        val = _stratified_val(labels, n_val, rng)
    mask = np.ones(n, dtype=bool)
    mask[val] = False
    return Split(np.flatnonzero(mask).astype(np.int64), np.sort(val).astype(np.int64), kind, seed)
