"""Read IDX files (the MNIST format), gzip-compressed or raw, validating every header field.

An IDX file is a 4-byte magic ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the values in C order. Every failure is a one-line :class:`DataError`
that starts with the file's path.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from cnnlab.data.registry import cache_root
from cnnlab.errors import DataError
from cnnlab.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

# IDX dtype code -> NumPy dtype (multi-byte values are big-endian)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 4 << 30  # 4 GiB: far above any IDX dataset, far below a gzip bomb's output
# Inflated IDX files at least this big are kept in the user cache (see read_idx): MNIST's training
# images (47 MB) take 0.15 s to inflate and 0.01 s to read back.
INFLATED_CACHE_MIN_BYTES = 1 << 20


def decompress_bytes(raw: bytes, source: str | Path, max_bytes: int = MAX_IDX_BYTES) -> bytes:
    """Return the IDX bytes of a file's content, gunzipping it when it starts with the gzip magic.

    One ``zlib`` call per gzip member on the whole buffer (the fastest way CPython has to
    inflate); ``eof`` tells a complete stream from one cut short, and output beyond
    ``max_bytes`` (a gzip bomb, or not a dataset) is refused before it is allocated.
    """
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    parts, total, rest = [], 0, raw
    while rest:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16+: gzip header and trailer
        try:
            part = inflater.decompress(rest, max_bytes - total + 1)
        except zlib.error as exc:
            raise DataError(f"{source}: corrupt gzip data ({exc})") from None
        total += len(part)
        if total > max_bytes:
            raise DataError(f"{source}: inflates to more than {max_bytes:,} bytes; refused")
        if not inflater.eof:
            raise DataError(
                f"{source}: truncated gzip stream ({len(raw):,} bytes; file cut short?)"
            )
        parts.append(part)
        rest = inflater.unused_data.lstrip(b"\0")  # further gzip members (gzip -c a b > c)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def parse_idx(data: bytes, source: str | Path, ndim: int | None = None) -> np.ndarray:
    """Parse IDX bytes into a read-only NumPy array (no copy for uint8 data).

    Args:
        data: the decompressed file content.
        source: the file name used in error messages.
        ndim: the number of dimensions the caller expects (``None``: any).

    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]), "x").tolist()
    [7, 9]
    """
    if len(data) < 4:
        raise DataError(f"{source}: truncated IDX file: {len(data)} bytes, no 4-byte header")
    magic = int.from_bytes(data[:4], "big")
    code, dims = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or dims == 0:
        raise DataError(
            f"{source}: not an IDX file (magic 0x{magic:08X}, expected 0x00000801 or 0x00000803)"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{source}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim is not None and dims != ndim:
        raise DataError(f"{source}: expected an IDX file with {ndim} dimension(s), got {dims}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataError(
            f"{source}: truncated IDX file: header needs {header} bytes, got {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    shape_text = "x".join(map(str, shape))
    if found < expected:
        raise DataError(
            f"{source}: truncated IDX file: header says {shape_text} needing {expected:,} bytes "
            f"of data, found {found:,}"
        )
    if found > expected:
        raise DataError(
            f"{source}: {found - expected:,} unexpected bytes after the {shape_text} IDX data"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw; detected from the content, not the name).

    Returns a read-only array. The last few files read are kept in memory (keyed by path, size,
    mtime and inode, so a replaced file is read again): loading the test split after the train
    split, or in every test of a suite, skips the inflating. A gzip file that inflates to 1 MB or
    more is also kept inflated in the user cache (``~/.cache/cnnlab/inflated/``, as torchvision
    keeps MNIST's raw files), under the same key, so the next process reads it back instead of
    inflating it; ``CNNLAB_INFLATED_CACHE=0`` turns that off.

    >>> read_idx("mnist/t10k-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
    (10000,)
    """
    path = Path(path)
    st = path.stat()
    arr = _read_idx_cached(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, str(path))
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{path}: expected an IDX file with {ndim} dimension(s), got {arr.ndim}")
    return arr


@functools.lru_cache(maxsize=4)  # train/test images + labels of one dataset: ~55 MB for MNIST
def _read_idx_cached(resolved: str, size: int, mtime_ns: int, ino: int, shown: str) -> np.ndarray:
    cached = _inflated_path(resolved, size, mtime_ns, ino)
    if cached is not None and cached.is_file():
        try:
            return parse_idx(cached.read_bytes(), cached)
        except (OSError, DataError) as exc:  # a damaged cache entry: inflate the file again
            log.debug("ignoring %s: %s", cached, exc)
    raw = Path(resolved).read_bytes()
    data = decompress_bytes(raw, shown)
    arr = parse_idx(data, shown)
    if cached is not None and data is not raw and len(data) >= INFLATED_CACHE_MIN_BYTES:
        _keep_inflated(cached, data)
    return arr


def _inflated_path(resolved: str, size: int, mtime_ns: int, ino: int) -> Path | None:
    """Where the inflated copy of a file version lives in the cache (None: caching is off)."""
    if os.environ.get("CNNLAB_INFLATED_CACHE", "1") == "0":
        return None
    where = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    version = hashlib.sha256(f"{size}:{mtime_ns}:{ino}".encode()).hexdigest()[:12]
    name = Path(resolved).name.removesuffix(".gz")
    return cache_root() / "inflated" / f"{name}-{where}-{version}"


def _keep_inflated(path: Path, data: bytes) -> None:
    """Write the inflated bytes atomically and drop older versions of the same source file; a
    cache that cannot be written (read-only home, full disk) only costs the next read time."""
    try:
        atomic_write_bytes(path, data, make_parents=True)
        for old in path.parent.glob(glob.escape(path.name.rsplit("-", 1)[0]) + "-*"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("not caching %s: %s", path, exc)


def read_idx_pair(
    images_path: str | Path, labels_path: str | Path, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file (N, H, W) uint8 and its labels file (N,) and check they agree.

    Returns read-only arrays; labels are checked to lie in ``0 .. num_classes-1``.
    """
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected uint8 images (code 0x08), got {images.dtype}")
    if labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: expected uint8 labels (code 0x08), got {labels.dtype}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images):,} images but {labels_path} has {len(labels):,} labels"
        )
    if len(labels) and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is out of range "
            f"0..{num_classes - 1}"
        )
    return images, labels
