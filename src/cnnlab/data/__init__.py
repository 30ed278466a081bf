"""Datasets as in-memory tensors: IDX files, the registry, image folders, splits, the loader.

>>> from cnnlab.data import load_dataset, make_split, Normalizer, BatchLoader
>>> train = load_dataset("digits", "train")
>>> split = make_split(train.labels, "random", seed=0)
>>> norm = Normalizer("pixel").fit(train.images[split.train])
>>> loader = BatchLoader(train.subset(split.train), 128, shuffle=True, normalizer=norm)
>>> x, y = next(loader.batches(epoch=0))
>>> tuple(x.shape), x.dtype
((128, 1, 28, 28), torch.float32)
"""

from __future__ import annotations

from cnnlab.data.dataset import ArrayDataset, load_dataset
from cnnlab.data.download import Verdict, download_dataset, download_file, verify_file
from cnnlab.data.idx import parse_idx, read_idx, read_idx_pair
from cnnlab.data.loader import BatchLoader, epoch_permutation
from cnnlab.data.locate import locate_dataset
from cnnlab.data.registry import (
    DATASETS,
    FASHION_CLASSES,
    DatasetInfo,
    FileInfo,
    cache_root,
    get_info,
    search_dirs,
)
from cnnlab.data.split import Split, make_split
from cnnlab.data.transforms import Augment, Normalizer

__all__ = [
    "DATASETS",
    "FASHION_CLASSES",
    "ArrayDataset",
    "Augment",
    "BatchLoader",
    "DatasetInfo",
    "FileInfo",
    "Normalizer",
    "Split",
    "Verdict",
    "cache_root",
    "download_dataset",
    "download_file",
    "epoch_permutation",
    "get_info",
    "load_dataset",
    "load_image_folder",
    "locate_dataset",
    "make_split",
    "parse_idx",
    "read_idx",
    "read_idx_pair",
    "search_dirs",
    "verify_file",
]


def __getattr__(name: str):
    # load_image_folder needs cnnlab.images (Pillow); import it on first use.
    if name == "load_image_folder":
        from cnnlab.data.folder import load_image_folder

        return load_image_folder
    raise AttributeError(f"module 'cnnlab.data' has no attribute {name!r}")
