"""Find a dataset's files: explicit folder, ``$CNNLAB_DATA``, the cache, the system, download."""

from __future__ import annotations

import os
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
    looked = []
    for origin, folder in places:
        if origin == "cache" and not os.environ.get("CNNLAB_DATA"):
            looked.append("CNNLAB_DATA (not set)")
        looked.append(f"{origin} {folder} ({describe_missing(folder, info)})")
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
        f"dataset {name!r} not found. Looked in: {'; '.join(looked)}; {fetched}. To supply it, put "
        f"{names} in a folder {name}/ and pass --data-dir <its parent> (data_dir=...) or set "
        f"CNNLAB_DATA=<its parent>"
    )


def dataset_status(name: str, data_dir: str | Path | None = None, verify: bool = True) -> dict:
    """Where ``name`` is found (no download) and whether its files check out, as plain data.

    Returns a dict with ``name``, ``found`` (bool), ``origin`` and ``folder`` of the first
    complete folder, ``looked`` (every place with the reason it did not qualify), ``files``
    (name, path, bytes, ``ok``, ``detail`` per file), ``bytes`` and ``checksums`` (``OK``,
    ``BAD`` or ``not checked``). The CLI's ``cnnlab datasets`` prints it.
    """
    from cnnlab.data.download import verify_file

    info = get_info(name)
    status: dict = {"name": name, "description": info.description, "classes": list(info.classes)}
    status["sizes"] = dict(info.sizes)
    if info.builtin:
        status.update(found=True, origin="built in", folder=None, looked=[], files=[], bytes=0)
        status["checksums"] = "n/a"
        return status
    status.update(found=False, origin=None, folder=None, looked=[], files=[], bytes=0)
    status["checksums"] = "n/a"
    for origin, folder in search_dirs(name, data_dir):
        paths = files_in(folder, info)
        if paths is None:
            status["looked"].append(
                {"origin": origin, "folder": str(folder), "reason": describe_missing(folder, info)}
            )
            continue
        status.update(found=True, origin=origin, folder=str(folder))
        for role, path in paths.items():
            entry = {"role": role, "name": path.name, "path": str(path)}
            entry["bytes"] = path.stat().st_size
            if verify:
                verdict = verify_file(path, info.files[role])
                entry.update(ok=verdict.ok, detail=verdict.detail)
            status["files"].append(entry)
        status["bytes"] = sum(f["bytes"] for f in status["files"])
        if verify:
            status["checksums"] = "OK" if all(f["ok"] for f in status["files"]) else "BAD"
        else:
            status["checksums"] = "not checked"
        break
    return status
