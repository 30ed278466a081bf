"""IDX reader: round trips, every bad-file case with its exact error line, the real files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from cnnlab.data.idx import parse_idx, read_idx, read_idx_pair
from cnnlab.errors import DataError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _error(fn, *args, **kw) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    ("dtype", "code"),
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D)],
)
def test_round_trip_all_dtypes(idx, tmp_path, compress, dtype, code):
    arr = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    path = idx.write(tmp_path / "a.idx", arr, code, compress)
    out = read_idx(path, ndim=3)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.kind == np.dtype(dtype).kind


def test_gzip_detected_by_content_not_name(idx, tmp_path):
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = tmp_path / "plain-name-but-gzipped"
    path.write_bytes(gzip.compress(idx.bytes(arr)))
    np.testing.assert_array_equal(read_idx(path), arr)


def test_truncated_data(idx, tmp_path):
    path = tmp_path / "imgs.idx"
    path.write_bytes(idx.bytes(np.zeros((10, 4, 4), np.uint8))[:-7])
    assert _error(read_idx, path) == (
        f"{path}: truncated IDX file: header says 10x4x4 needing 160 bytes of data, found 153"
    )


def test_truncated_header(tmp_path):
    path = tmp_path / "h.idx"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 5]))
    assert _error(read_idx, path) == f"{path}: truncated IDX file: header needs 16 bytes, got 8"
    path.write_bytes(b"\0\0")
    assert _error(read_idx, path) == f"{path}: truncated IDX file: 2 bytes, no 4-byte header"


def test_truncated_gzip(idx, tmp_path):
    path = tmp_path / "cut.gz"
    full = gzip.compress(idx.bytes(np.arange(4000, dtype=np.int32) % 256, 0x0C))
    path.write_bytes(full[: len(full) // 2])
    assert _error(read_idx, path) == (
        f"{path}: truncated gzip stream ({len(full) // 2:,} bytes; file cut short?)"
    )


def test_corrupt_gzip(idx, tmp_path):
    path = tmp_path / "bad.gz"
    full = bytearray(gzip.compress(idx.bytes(np.zeros(100, np.uint8))))
    full[12:20] = b"\xff" * 8  # garbage inside the deflate stream
    path.write_bytes(bytes(full))
    message = _error(read_idx, path)
    assert message.startswith(f"{path}: corrupt gzip data (Error -3 while decompressing data")


def test_wrong_magic(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert _error(read_idx, path) == (
        f"{path}: not an IDX file (magic 0x89504E47, expected 0x00000801 or 0x00000803)"
    )


def test_unknown_dtype_code(tmp_path):
    path = tmp_path / "d.idx"
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    assert _error(read_idx, path) == (
        f"{path}: unknown IDX dtype code 0x07 (known: 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)"
    )


def test_wrong_number_of_dimensions(idx, tmp_path):
    path = idx.write(tmp_path / "labels.gz", np.zeros(5, np.uint8))
    assert _error(read_idx, path, ndim=3) == (
        f"{path}: expected an IDX file with 3 dimension(s), got 1"
    )


def test_trailing_bytes(idx, tmp_path):
    path = tmp_path / "t.idx"
    path.write_bytes(idx.bytes(np.zeros(5, np.uint8)) + b"xyz")
    assert _error(read_idx, path) == f"{path}: 3 unexpected bytes after the 5 IDX data"


def test_count_mismatch(idx, tmp_path):
    imgs = idx.write(tmp_path / "imgs.gz", np.zeros((5, 2, 2), np.uint8))
    labels = idx.write(tmp_path / "labels.gz", np.zeros(4, np.uint8))
    assert _error(read_idx_pair, imgs, labels, 10) == (
        f"{imgs} has 5 images but {labels} has 4 labels"
    )


def test_label_out_of_range(idx, tmp_path):
    imgs = idx.write(tmp_path / "imgs.gz", np.zeros((5, 2, 2), np.uint8))
    labels = idx.write(tmp_path / "labels.gz", np.array([1, 2, 12, 3, 10], np.uint8))
    assert _error(read_idx_pair, imgs, labels, 10) == (
        f"{labels}: label 12 at index 2 is out of range 0..9"
    )


def test_non_uint8_images_refused(idx, tmp_path):
    imgs = idx.write(tmp_path / "imgs.gz", np.zeros((2, 2, 2), np.float32), 0x0D)
    labels = idx.write(tmp_path / "labels.gz", np.zeros(2, np.uint8))
    assert _error(read_idx_pair, imgs, labels, 10) == (
        f"{imgs}: expected uint8 images (code 0x08), got >f4"
    )


def test_parse_idx_is_zero_copy_for_uint8(idx):
    data = idx.bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    arr = parse_idx(data, "mem")
    assert arr.base is not None and not arr.flags.writeable


def test_mnist_train(mnist_train):
    assert mnist_train.images.shape == (60000, 1, 28, 28)
    assert str(mnist_train.images.dtype) == "torch.uint8"
    assert str(mnist_train.labels.dtype) == "torch.int64"
    assert mnist_train.class_counts() == MNIST_TRAIN_COUNTS
    assert mnist_train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    mean = mnist_train.images.sum(dtype=torch.int64).item() / mnist_train.images.numel()
    assert mean == pytest.approx(33.3184, abs=1e-4)  # SOURCE.md sanity value


def test_mnist_test(mnist_test):
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert mnist_test.class_counts() == MNIST_TEST_COUNTS
    assert mnist_test.classes == tuple("0123456789")


def test_fashion_train(fashion_train):
    assert fashion_train.images.shape == (60000, 1, 28, 28)
    assert fashion_train.class_counts() == [6000] * 10
    assert fashion_train.classes[0] == "T-shirt/top" and fashion_train.classes[9] == "Ankle boot"
    mean = fashion_train.images.sum(dtype=torch.int64).item() / fashion_train.images.numel() / 255
    assert mean == pytest.approx(0.2860, abs=1e-4)


def test_fashion_test(shared_data):
    from cnnlab.data import load_dataset

    ds = load_dataset("fashion-mnist", "test", data_dir=shared_data, download=False)
    assert ds.images.shape == (10000, 1, 28, 28)
    assert ds.class_counts() == [1000] * 10


def test_multi_member_gzip(idx, tmp_path):
    data = idx.bytes(np.arange(10, dtype=np.uint8))
    path = tmp_path / "two.gz"
    path.write_bytes(gzip.compress(data[:7]) + gzip.compress(data[7:]))
    assert read_idx(path).tolist() == list(range(10))


def test_gzip_bomb_refused(tmp_path):
    from cnnlab.data.idx import decompress_bytes

    raw = gzip.compress(bytes(1_000_000))
    assert _error(decompress_bytes, raw, "bomb.gz", max_bytes=10_000) == (
        "bomb.gz: inflates to more than 10,000 bytes; refused"
    )


def test_cached_reads_see_replaced_files(idx, tmp_path):
    path = idx.write(tmp_path / "a.gz", np.arange(5, dtype=np.uint8))
    first = read_idx(path)
    assert not first.flags.writeable  # shared between callers, so never writable
    assert read_idx(path) is first  # served from memory
    idx.write(tmp_path / "b.gz", np.arange(7, dtype=np.uint8)).replace(path)
    assert read_idx(path).tolist() == list(range(7))


def _noise_images(seed: int) -> np.ndarray:
    """Random images: they inflate to over INFLATED_CACHE_MIN_BYTES (gzip cannot shrink them)."""
    return np.random.default_rng(seed).integers(0, 256, (1400, 28, 28), dtype=np.uint8)


def test_big_gzip_files_are_kept_inflated_in_the_cache(idx, tmp_path, monkeypatch):
    from cnnlab.data import idx as idx_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNLAB_INFLATED_CACHE", raising=False)
    images = _noise_images(0)
    path = idx.write(tmp_path / "train-images-idx3-ubyte.gz", images)
    np.testing.assert_array_equal(read_idx(path), images)
    kept = list((tmp_path / "cache" / "cnnlab" / "inflated").iterdir())
    assert [p.name.split("-")[:4] for p in kept] == [["train", "images", "idx3", "ubyte"]]
    assert kept[0].read_bytes() == idx.bytes(images)

    # a new process (an empty memory cache) reads the inflated copy, not the gzip file
    idx_module._read_idx_cached.cache_clear()
    seen = []
    monkeypatch.setattr(idx_module, "decompress_bytes", lambda raw, src: seen.append(src))
    np.testing.assert_array_equal(read_idx(path), images)
    assert seen == []
    monkeypatch.undo()

    # a damaged entry is ignored and rewritten; a replaced source file replaces its entry
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kept[0].write_bytes(b"\0\0\x08")
    idx_module._read_idx_cached.cache_clear()
    np.testing.assert_array_equal(read_idx(path), images)
    assert kept[0].read_bytes() == idx.bytes(images)
    other = _noise_images(1)
    idx.write(tmp_path / "new.gz", other).replace(path)
    np.testing.assert_array_equal(read_idx(path), other)
    (entry,) = (tmp_path / "cache" / "cnnlab" / "inflated").iterdir()
    assert entry != kept[0] and entry.read_bytes() == idx.bytes(other)


def test_the_inflated_cache_can_be_turned_off_and_skips_small_files(idx, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    small = idx.write(tmp_path / "small.gz", np.arange(100, dtype=np.uint8))
    assert read_idx(small).tolist() == list(range(100))
    monkeypatch.setenv("CNNLAB_INFLATED_CACHE", "0")
    big = idx.write(tmp_path / "big.gz", _noise_images(2))
    assert read_idx(big).shape == (1400, 28, 28)
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_only_costs_time(idx, tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = _noise_images(3)
    np.testing.assert_array_equal(read_idx(idx.write(tmp_path / "x.gz", images)), images)
