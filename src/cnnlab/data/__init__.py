"""Datasets as in-memory tensors: IDX files, the registry, image folders, splits, the loader.

Names are imported on first use, so ``cnnlab datasets`` (registry + checksums) never loads torch.

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

from cnnlab._lazy import lazy_exports

# public name -> defining module (imported lazily)
_LAZY = {
    "ArrayDataset": "cnnlab.data.dataset",
    "load_dataset": "cnnlab.data.dataset",
    "Verdict": "cnnlab.data.download",
    "download_dataset": "cnnlab.data.download",
    "download_file": "cnnlab.data.download",
    "verify_file": "cnnlab.data.download",
    "load_image_folder": "cnnlab.data.folder",
    "parse_idx": "cnnlab.data.idx",
    "read_idx": "cnnlab.data.idx",
    "read_idx_pair": "cnnlab.data.idx",
    "BatchLoader": "cnnlab.data.loader",
    "epoch_permutation": "cnnlab.data.loader",
    "dataset_status": "cnnlab.data.locate",
    "locate_dataset": "cnnlab.data.locate",
    "DATASETS": "cnnlab.data.registry",
    "FASHION_CLASSES": "cnnlab.data.registry",
    "DatasetInfo": "cnnlab.data.registry",
    "FileInfo": "cnnlab.data.registry",
    "cache_root": "cnnlab.data.registry",
    "get_info": "cnnlab.data.registry",
    "search_dirs": "cnnlab.data.registry",
    "Split": "cnnlab.data.split",
    "make_split": "cnnlab.data.split",
    "Augment": "cnnlab.data.transforms",
    "Normalizer": "cnnlab.data.transforms",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("cnnlab.data", _LAZY, globals())
