"""From a TrainConfig to loaders: dataset, subset, split, normaliser, batch loader.

Kept apart from the loop so evaluate/predict/reproduce reuse the exact same choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.config import COLOR_CHANNELS, TrainConfig
from cnnlab.errors import DataError

BUILTIN = ("mnist", "fashion-mnist", "digits")


def is_folder_dataset(name: str) -> bool:
    """A dataset argument that is not a registered name is a path to an image folder."""
    return name not in BUILTIN


def unknown_dataset(name: str) -> str:
    """The one-line error for a dataset that is neither a known name nor a folder."""
    from cnnlab.data.registry import nearest_hint

    return (
        f"unknown dataset {name!r}: not one of {', '.join(BUILTIN)} "
        f"and not an image folder{nearest_hint(name)}"
    )


def load_split(
    name: str,
    split: str,
    data_dir: str | None = None,
    download: bool = True,
    *,
    image_size: int | tuple[int, int] = 28,
    channels: int = 1,
):
    """One split of a built-in dataset, or the whole image folder (resized to ``image_size``,
    ``channels`` 1 = grayscale or 3 = RGB; built-in datasets are what they are)."""
    from cnnlab.data import load_dataset, load_image_folder

    if is_folder_dataset(name):
        if not Path(name).is_dir():
            raise DataError(unknown_dataset(name))
        return load_image_folder(Path(name), input_size=image_size, channels=channels)
    return load_dataset(name, split=split, data_dir=data_dir, download=download)


def folder_options(config: TrainConfig) -> dict[str, Any]:
    """``load_split`` keywords for the config's image size and colour mode."""
    return {"image_size": config.image_size, "channels": COLOR_CHANNELS[config.color_mode]}


@dataclass
class PreparedData:
    """Everything fit() needs from the data side."""

    train: Any  # ArrayDataset (uint8)
    val: Any | None  # ArrayDataset or None when there is no validation
    normalizer: Any
    split: Any  # cnnlab.data.Split (indices into the (limited) training images)
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]


def prepare_data(
    config: TrainConfig, split_state: dict | None = None, normalizer_state: dict | None = None
) -> PreparedData:
    """Load, limit, split and fit the normaliser (or reuse a checkpoint's split/normaliser)."""
    from cnnlab.data import Normalizer, Split, make_split

    opts = folder_options(config)
    full = load_split(config.dataset, "train", config.data_dir, config.download, **opts)
    if config.limit_train is not None and config.limit_train < len(full.labels):
        full = full.subset(np.arange(config.limit_train))
    labels = full.labels.numpy()
    if split_state is not None:
        split = Split.from_dict(split_state)
    elif config.validate_on == "test" or (config.val_fraction == 0 and not config.val_size):
        split = Split(train=np.arange(len(labels), dtype=np.int64), val=np.zeros(0, np.int64))
    else:
        split = make_split(
            labels,
            kind=config.val_split,
            val_fraction=config.val_fraction,
            val_size=config.val_size,
            seed=config.seed,
        )
    train = full.subset(split.train)
    if config.validate_on == "test":
        val = load_split(config.dataset, "test", config.data_dir, config.download, **opts)
    else:
        val = full.subset(split.val) if len(split.val) else None
    if normalizer_state is not None:
        normalizer = Normalizer.from_state(normalizer_state)
    else:
        normalizer = Normalizer(config.normalize).fit(train.images)
    return PreparedData(
        train=train,
        val=val,
        normalizer=normalizer,
        split=split,
        classes=tuple(full.classes),
        input_shape=tuple(int(s) for s in full.images.shape[1:]),
    )


def make_loader(config: TrainConfig, data: PreparedData, rank: int = 0, world_size: int = 1):
    """The training BatchLoader (``config.batch_size`` is global: each rank gets its share)."""
    from cnnlab.data import Augment, BatchLoader

    augment = (
        Augment(
            shift=config.augment_shift,
            rotate=config.augment_rotate,
            flip=config.augment_flip,
            erase=config.augment_erase,
        )
        if config.augment
        else None
    )
    return BatchLoader(
        data.train,
        max(1, config.batch_size // world_size),
        shuffle=True,
        seed=config.seed,
        normalizer=data.normalizer,
        augment=augment,
        drop_last=config.drop_last,
        rank=rank,
        world_size=world_size,
        channels_last=config.channels_last,
    )


def evaluation_set(config: TrainConfig, data_dir: str | None = None):
    """The set `cnnlab evaluate` reports on: the test split; for image folders, the whole folder
    is loaded and the caller restricts it to the checkpoint's validation indices."""
    return load_split(
        config.dataset, "test", data_dir or config.data_dir, config.download,
        **folder_options(config),
    )  # fmt: skip
