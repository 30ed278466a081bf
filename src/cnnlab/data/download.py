"""Checksum verification and the atomic downloader.

A download streams into a hidden temp file next to its destination (``.name.XXXX.part``),
is verified, fsynced and only then renamed into place, so an interrupted or corrupt transfer
never leaves a file with the canonical name.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnlab.data.idx import decompress_bytes
from cnnlab.data.registry import DatasetInfo, FileInfo, find_file
from cnnlab.errors import DataError
from cnnlab.fileio import atomic_write_bytes

_CHUNK = 1 << 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """The result of checking one file: ``ok`` and a short human reason."""

    ok: bool
    detail: str  # "sha256 OK", "content sha256 OK (recompressed)", "BAD: ..."


def check_bytes(content: bytes, info: FileInfo, source: str | Path = "") -> Verdict:
    """Check a file's bytes against ``info``: the ``.gz`` digests first, then the IDX content.

    >>> check_bytes(b"x", FileInfo("a.gz", "0" * 64, "0" * 32)).ok
    False
    """
    sha = hashlib.sha256(content).hexdigest()
    if sha == info.sha256:
        return Verdict(True, "sha256 OK")
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
    if md5 == info.md5 or md5 in info.alt_md5:
        return Verdict(True, "md5 OK")
    if info.raw_sha256:
        # A recompressed or unpacked copy: the decompressed IDX bytes identify the data.
        try:
            raw = decompress_bytes(content, source)
        except DataError:
            raw = b""
        if raw and hashlib.sha256(raw).hexdigest() == info.raw_sha256:
            return Verdict(True, "content sha256 OK")
    return Verdict(
        False,
        f"BAD: {len(content):,} bytes with sha256 {sha[:12]}..., expected "
        f"{info.size:,} bytes with sha256 {info.sha256[:12]}...",
    )


def verify_file(path: str | Path, info: FileInfo) -> Verdict:
    """Check the file at ``path`` (``.gz`` or unpacked IDX) against ``info``."""
    path = Path(path)
    return check_bytes(path.read_bytes(), info, path)


def _fetch(url: str, timeout: float, limit: int) -> bytes:
    """GET ``url`` and return the body; one-line DataError on HTTP, network or short reads.

    Bodies over ``limit`` bytes (a wrong URL serving something huge) are refused while reading.
    """
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http(s) only
            expected = resp.headers.get("Content-Length")
            chunks, total = [], 0
            while chunk := resp.read(_CHUNK):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise DataError(f"{url}: more than {limit:,} bytes, not this file; refused")
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DataError(f"{url}: {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise DataError(
            f"{url}: connection closed after {len(exc.partial):,} bytes (truncated transfer)"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DataError(f"{url}: {type(exc).__name__}: {exc}") from None
    body = b"".join(chunks)
    if expected is not None and expected.isdigit() and int(expected) != len(body):
        raise DataError(f"{url}: got {len(body):,} of {int(expected):,} bytes (truncated transfer)")
    return body


def download_file(
    info: FileInfo, dest_dir: str | Path, mirrors: Sequence[str], timeout: float = 30.0
) -> Path:
    """Download ``info`` from the first mirror that serves a verified copy into ``dest_dir``.

    Raises:
        DataError: every mirror failed; the message lists each URL with its reason.
    """
    errors = []
    limit = 2 * max(info.size, info.raw_size) + _CHUNK if info.size else 1 << 32
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + info.name
        try:
            body = _fetch(url, timeout, limit)
        except DataError as exc:
            errors.append(str(exc))
            continue
        verdict = check_bytes(body, info, url)
        if not verdict.ok:
            errors.append(f"{url}: checksum mismatch: {verdict.detail.removeprefix('BAD: ')}")
            continue
        # a mirror that serves the unpacked bytes (verified by content) gets the unpacked name
        name = info.name if body.startswith(b"\x1f\x8b") else info.raw_name
        dest = Path(dest_dir) / name
        atomic_write_bytes(dest, body, make_parents=True)
        log.info("saved %s (%s)", dest, verdict.detail)
        return dest
    if not mirrors:
        errors.append("no mirrors configured")
    raise DataError(f"download of {info.name} failed: {'; '.join(errors)}")


def download_dataset(
    info: DatasetInfo,
    dest_dir: str | Path,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download every missing or bad file of ``info`` into ``dest_dir`` and return that folder.

    >>> download_dataset(DATASETS["mnist"], "~/.cache/cnnlab/mnist")  # doctest: +SKIP
    """
    dest_dir = Path(dest_dir).expanduser()
    mirrors = info.mirrors if mirrors is None else tuple(mirrors)
    for finfo in info.files.values():
        present = find_file(dest_dir, finfo)
        if present is not None and verify_file(present, finfo).ok:
            continue
        download_file(finfo, dest_dir, mirrors, timeout)
    return dest_dir
