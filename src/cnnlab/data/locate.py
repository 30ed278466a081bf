"""Find a dataset's files: explicit folder, ``$CNNLAB_DATA``, the cache, the system, download."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnlab.data.download import download_dataset
from cnnlab.data.registry import (
    cache_root,
    describe_missing,
    files_in,
    get_info,
    search_dirs,
)
from cnnlab.errors import DataError


def locate_dataset(
    name: str,
    data_dir: str | Path | None = None,
    download: bool = True,
    *,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Return the folder holding all of ``name``'s files, downloading them into the cache if needed.

    Search order: ``data_dir/<name>`` (or ``data_dir`` itself when named ``<name>``),
    ``$CNNLAB_DATA/<name>``, ``~/.cache/cnnlab/<name>``, ``/usr/share/datasets/<name>``, then a
    verified download from ``mirrors`` (default: the registry's) into the cache.

    Raises:
        DataError: one line listing every folder looked in (and why it did not qualify), the
            download failure, and how to supply the files.

    >>> locate_dataset("mnist", "/work/shared/data")  # doctest: +SKIP
    PosixPath('/work/shared/data/mnist')
    """
    info = get_info(name)
    if info.builtin:
        raise DataError(f"dataset {name!r} is built in and has no files; use load_dataset")
    places = search_dirs(name, data_dir)
    for _origin, folder in places:
        if files_in(folder, info) is not None:
            return folder
    looked = "; ".join(
        f"{origin} {folder} ({describe_missing(folder, info)})" for origin, folder in places
    )
    if download:
        try:
            return download_dataset(info, cache_root() / name, mirrors, timeout)
        except DataError as exc:
            fetched = f"download failed: {exc}"
        except OSError as exc:  # e.g. read-only home: say so instead of a traceback
            fetched = f"download failed: cannot write {cache_root() / name}: {exc.strerror}"
    else:
        fetched = "download disabled"
    names = ", ".join(f.name for f in info.files.values())
    raise DataError(
        f"dataset {name!r} not found. Looked in: {looked}; {fetched}. To supply it, put "
        f"{names} in a folder {name}/ and pass --data-dir <its parent> (data_dir=...) or set "
        f"CNNLAB_DATA=<its parent>"
    )
