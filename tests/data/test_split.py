"""make_split: random / last / stratified, and the saved form."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from cnnlab.data import Split, make_split
from cnnlab.errors import DataError


def _check_partition(split: Split, n: int) -> None:
    assert np.intersect1d(split.train, split.val).size == 0
    assert np.array_equal(np.sort(np.concatenate([split.train, split.val])), np.arange(n))
    assert split.train.dtype == np.int64 and split.val.dtype == np.int64


def test_random_80_20_seeded():
    labels = np.arange(1000) % 7
    a = make_split(labels, "random", seed=3)
    _check_partition(a, 1000)
    assert (len(a.train), len(a.val)) == (800, 200)
    assert a == make_split(labels, "random", seed=3)
    assert not np.array_equal(a.val, make_split(labels, "random", seed=4).val)


def test_last_n_like_notebook_004(mnist_train):
    split = make_split(mnist_train.labels, "last", val_size=5000)
    _check_partition(split, 60000)
    assert split.val.tolist() == list(range(55000, 60000))


def test_stratified_keeps_class_shares(mnist_train):
    labels = mnist_train.labels.numpy()
    split = make_split(mnist_train.labels, "stratified", val_fraction=0.1, seed=0)
    _check_partition(split, 60000)
    assert len(split.val) == 6000
    counts = np.bincount(labels, minlength=10)
    val_counts = np.bincount(labels[split.val], minlength=10)
    assert np.all(np.abs(val_counts - counts * 0.1) <= 1)


def test_stratified_exact_total_with_remainders():
    labels = np.array([0] * 5 + [1] * 7 + [2] * 9)
    split = make_split(labels, "stratified", val_size=4, seed=1)
    assert len(split.val) == 4
    assert set(np.bincount(labels[split.val], minlength=3).tolist()) <= {1, 2}


def test_to_dict_round_trips_json_and_weights_only(tmp_path):
    split = make_split(torch.arange(50), "random", val_fraction=0.3, seed=9)
    d = split.to_dict()
    assert Split.from_dict(json.loads(json.dumps(d))) == split
    buf = io.BytesIO()
    torch.save({"split": d}, buf)
    buf.seek(0)
    assert Split.from_dict(torch.load(buf, weights_only=True)["split"]) == split
    assert d["kind"] == "random" and d["seed"] == 9


def test_checkpoints_store_the_split_as_tensors_and_old_lists_still_load():
    from cnnlab.engine.loop import _split_tensors

    split = make_split(torch.arange(60_000), "random", val_fraction=0.05, seed=3)
    stored = _split_tensors(split)
    assert isinstance(stored["train"], torch.Tensor) and stored["train"].dtype == torch.int64
    buf = io.BytesIO()
    torch.save({"split": stored}, buf)
    assert buf.tell() < 600_000  # 8 bytes per index, not a pickled list of Python ints
    buf.seek(0)
    assert Split.from_dict(torch.load(buf, weights_only=True)["split"]) == split
    assert Split.from_dict(split.to_dict()) == split  # the list form older checkpoints hold


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "kfold"}, "unknown split kind 'kfold' (use random, last, stratified)"),
        ({"val_size": 10}, "val_size=10 for 10 samples: need 0 < val_size < 10"),
        ({"val_size": 0}, "val_size=0 for 10 samples: need 0 < val_size < 10"),
        ({"val_fraction": 1.5}, "val_fraction=1.5 must be between 0 and 1 (exclusive)"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(DataError) as info:
        make_split(np.zeros(10), **kwargs)
    assert str(info.value) == message


def test_from_dict_rejects_overlap():
    with pytest.raises(DataError, match="overlap"):
        Split.from_dict({"train": [0, 1, 2], "val": [2, 3]})
