"""The dataset registry: file names, checksums, class names, mirrors, and where files are found.

Nothing here reads the environment or touches the disk at import time: ``CNNLAB_DATA``,
``XDG_CACHE_HOME`` and ``HOME`` are read when :func:`search_dirs` is called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.errors import DataError


@dataclass(frozen=True)
class FileInfo:
    """One distribution file (``*.gz``) and the digests that identify it.

    ``sha256`` / ``md5`` are of the ``.gz`` file as distributed; ``raw_sha256`` / ``raw_size`` are
    of its decompressed IDX content, which identifies the data even when a packager recompressed
    the file (Debian's Fashion-MNIST); ``alt_md5`` lists other known-good ``.gz`` md5s.
    """

    name: str
    sha256: str
    md5: str
    size: int = 0
    raw_sha256: str = ""
    raw_size: int = 0
    alt_md5: tuple[str, ...] = ()

    @property
    def raw_name(self) -> str:
        """The decompressed file name (``train-images-idx3-ubyte``)."""
        return self.name[:-3] if self.name.endswith(".gz") else self.name


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: its files by role (``train_images`` ...), classes and download mirrors."""

    name: str
    files: dict[str, FileInfo]
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int] = (1, 28, 28)
    mirrors: tuple[str, ...] = ()
    description: str = ""
    builtin: bool = False  # True: generated in memory (digits), no files
    sizes: dict[str, int] = field(default_factory=dict)  # split -> number of samples

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_MNIST_FILES = {
    "train_images": FileInfo(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        9_912_422,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47_040_016,
    ),
    "train_labels": FileInfo(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432",
        28_881,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60_008,
    ),
    "test_images": FileInfo(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3",
        1_648_877,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7_840_016,
    ),
    "test_labels": FileInfo(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c",
        4_542,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10_008,
    ),
}

# sha256/md5: the .gz files of Debian's dataset-fashion-mnist (recompressed by Debian);
# alt_md5: Zalando's upstream .gz files (the md5s torchvision checks); raw_*: IDX content.
_FASHION_FILES = {
    "train_images": FileInfo(
        "train-images-idx3-ubyte.gz",
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "cf8536b0aa1a6ac5fa3f23001093305c",
        26_421_856,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        47_040_016,
        ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",),
    ),
    "train_labels": FileInfo(
        "train-labels-idx1-ubyte.gz",
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "10bea18fdb374794d4bb42e356e600c9",
        29_491,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        60_008,
        ("25c81989df183df01b3e8a0aad5dffbe",),
    ),
    "test_images": FileInfo(
        "t10k-images-idx3-ubyte.gz",
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "f78720b4224f21cce2f2ccf2d7a94c9a",
        4_422_079,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        7_840_016,
        ("bef4ecab320f06d8554ea6380940ec79",),
    ),
    "test_labels": FileInfo(
        "t10k-labels-idx1-ubyte.gz",
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        "0d30e22e447f3c33dab9ed536400ac01",
        5_125,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        10_008,
        ("bb300cfdad3c16e7a12a480ee83cd310",),
    ),
}

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        _MNIST_FILES,
        DIGIT_CLASSES,
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        description="MNIST handwritten digits (LeCun, Cortes, Burges), CC BY-SA 3.0",
        sizes={"train": 60_000, "test": 10_000},
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        _FASHION_FILES,
        FASHION_CLASSES,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        description="Fashion-MNIST (Zalando Research), MIT",
        sizes={"train": 60_000, "test": 10_000},
    ),
    "digits": DatasetInfo(
        "digits",
        {},
        DIGIT_CLASSES,
        description="scikit-learn 8x8 digits upsampled to 28x28 (built in, no files)",
        builtin=True,
        sizes={"train": 1_438, "test": 359},
    ),
}


def get_info(name: str) -> DatasetInfo:
    """Return the registry entry for ``name``; unknown names fail listing the valid ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"unknown dataset {name!r} (known: {', '.join(DATASETS)}; "
            f"or use load_image_folder for your own images){nearest_hint(name)}"
        ) from None


def nearest_hint(name: str) -> str:
    """``"; did you mean fashion-mnist?"`` for a near miss of a registered name, else ``""``.

    >>> nearest_hint("Fashion_MNIST"), nearest_hint("cifar")
    ('; did you mean fashion-mnist?', '')
    """
    import difflib

    canon = name.lower().replace("_", "-").replace(" ", "-")
    near = difflib.get_close_matches(canon, list(DATASETS), n=1, cutoff=0.6)
    return f"; did you mean {near[0]}?" if near else ""


def cache_root() -> Path:
    """The user cache, ``$XDG_CACHE_HOME/cnnlab`` or ``~/.cache/cnnlab`` (read at call time)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnlab"


def search_dirs(name: str, data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """Where ``name``'s files are looked for, in order, as ``(origin, folder)`` pairs.

    ``data_dir`` and ``$CNNLAB_DATA`` are folders holding ``<name>/``; either may also be the
    dataset folder itself when its last component is the dataset name (``--data-dir ~/data/mnist``).

    >>> [o for o, _ in search_dirs("mnist", "/d")][:1]
    ['--data-dir']
    """
    dirs: list[tuple[str, Path]] = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        dirs.append(("--data-dir", data_dir / name))
        if data_dir.name == name:
            dirs.append(("--data-dir", data_dir))
    env = os.environ.get("CNNLAB_DATA")
    if env:
        env_dir = Path(env).expanduser()
        dirs.append(("CNNLAB_DATA", env_dir / name))
        if env_dir.name == name:
            dirs.append(("CNNLAB_DATA", env_dir))
    dirs.append(("cache", cache_root() / name))
    dirs.append(("system", Path("/usr/share/datasets") / name))
    return dirs


def find_file(folder: Path, info: FileInfo) -> Path | None:
    """The file for ``info`` in ``folder``: the unpacked IDX file if present, else the ``.gz``.

    Unpacked first because reading it skips inflating (MNIST train: ~0.25 s saved); torchvision's
    ``raw/`` folders hold both.
    """
    for candidate in (folder / info.raw_name, folder / info.name):
        if candidate.is_file():
            return candidate
    return None


def files_in(folder: Path, info: DatasetInfo) -> dict[str, Path] | None:
    """All of ``info``'s files in ``folder`` by role, or ``None`` when any is missing."""
    found = {role: find_file(folder, f) for role, f in info.files.items()}
    if any(p is None for p in found.values()):
        return None
    return found  # type: ignore[return-value]


def describe_missing(folder: Path, info: DatasetInfo) -> str:
    """Why ``folder`` does not hold the dataset: ``no such folder`` or the missing file names."""
    if not folder.is_dir():
        return "no such folder"
    missing = [f.name for f in info.files.values() if find_file(folder, f) is None]
    return f"missing {', '.join(missing)}"
