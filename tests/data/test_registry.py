"""Registry, checksums and the search order (env vars read at call time)."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest

from cnnlab.data import DATASETS, get_info, locate_dataset, search_dirs, verify_file
from cnnlab.data.locate import dataset_status
from cnnlab.errors import DataError

FASHION = (
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


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No CNNLAB_DATA, an empty cache under tmp_path."""
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_registry_entries():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "digits"}
    assert DATASETS["fashion-mnist"].classes == FASHION
    assert DATASETS["mnist"].classes == tuple("0123456789")
    for name in ("mnist", "fashion-mnist"):
        info = DATASETS[name]
        assert {f.name for f in info.files.values()} == {
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        }
        for f in info.files.values():
            assert len(f.sha256) == 64 and len(f.md5) == 32 and len(f.raw_sha256) == 64
    # the canonical MNIST md5s (torchvision checks the same ones)
    assert DATASETS["mnist"].files["train_images"].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert DATASETS["fashion-mnist"].files["train_images"].alt_md5 == (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    )


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_files_match_sha256_and_md5(shared_data, name):
    for finfo in DATASETS[name].files.values():
        content = (shared_data / name / finfo.name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == finfo.sha256
        assert hashlib.md5(content).hexdigest() == finfo.md5
        assert len(content) == finfo.size
        assert verify_file(shared_data / name / finfo.name, finfo).detail == "sha256 OK"


def test_unknown_dataset():
    with pytest.raises(DataError) as info:
        get_info("cifar10")
    assert str(info.value) == (
        "unknown dataset 'cifar10' (known: mnist, fashion-mnist, digits; "
        "or use load_image_folder for your own images)"
    )


def test_search_order_reads_env_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert search_dirs("mnist", tmp_path / "explicit") == [
        ("--data-dir", tmp_path / "explicit" / "mnist"),
        ("CNNLAB_DATA", tmp_path / "env" / "mnist"),
        ("cache", tmp_path / "xdg" / "cnnlab" / "mnist"),
        ("system", __import__("pathlib").Path("/usr/share/datasets/mnist")),
    ]
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "other"))
    assert search_dirs("mnist")[0] == ("CNNLAB_DATA", tmp_path / "other" / "mnist")


def test_data_dir_may_be_the_dataset_folder(isolated, shared_data):
    assert locate_dataset("mnist", shared_data / "mnist", download=False) == shared_data / "mnist"


def test_explicit_dir_wins_over_env(isolated, monkeypatch, shared_data):
    mine = isolated / "mine" / "mnist"
    mine.mkdir(parents=True)
    for f in DATASETS["mnist"].files.values():
        (mine / f.name).symlink_to(shared_data / "mnist" / f.name)
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))
    assert locate_dataset("mnist", isolated / "mine", download=False) == mine
    assert locate_dataset("mnist", download=False) == shared_data / "mnist"


def test_cache_is_searched(isolated, shared_data):
    cached = isolated / "cache" / "cnnlab" / "fashion-mnist"
    shutil.copytree(shared_data / "fashion-mnist", cached)
    assert locate_dataset("fashion-mnist", download=False) == cached


def test_not_found_offline_one_line(isolated):
    with pytest.raises(DataError) as info:
        locate_dataset("mnist", isolated / "nowhere", download=False)
    cache = isolated / "cache" / "cnnlab" / "mnist"
    assert str(info.value) == (
        f"dataset 'mnist' not found. Looked in: --data-dir {isolated}/nowhere/mnist "
        f"(no such folder); CNNLAB_DATA (not set); cache {cache} (no such folder); "
        "system /usr/share/datasets/mnist "
        "(no such folder); download disabled. To supply it, put train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in a "
        "folder mnist/ and pass --data-dir <its parent> (data_dir=...) or set "
        "CNNLAB_DATA=<its parent>"
    )


def test_partial_folder_names_missing_files(isolated, monkeypatch, shared_data):
    partial = isolated / "env" / "mnist"
    partial.mkdir(parents=True)
    shutil.copy(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz", partial)
    monkeypatch.setenv("CNNLAB_DATA", str(isolated / "env"))
    with pytest.raises(DataError) as info:
        locate_dataset("mnist", download=False)
    assert (
        f"CNNLAB_DATA {partial} (missing train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz)"
    ) in str(info.value)


def test_unpacked_and_recompressed_files_verify_by_content(tmp_path, shared_data):
    info = DATASETS["mnist"].files["test_labels"]
    raw = gzip.decompress((shared_data / "mnist" / info.name).read_bytes())
    (tmp_path / info.raw_name).write_bytes(raw)
    assert verify_file(tmp_path / info.raw_name, info).detail == "content sha256 OK"
    (tmp_path / info.name).write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    assert verify_file(tmp_path / info.name, info).detail == "content sha256 OK"
    bad = bytearray(raw)
    bad[100] ^= 1
    (tmp_path / info.name).write_bytes(gzip.compress(bytes(bad)))
    verdict = verify_file(tmp_path / info.name, info)
    assert not verdict.ok and verdict.detail.startswith("BAD: ")


def test_dataset_status_reports_bad_checksum(isolated, monkeypatch, shared_data):
    root = isolated / "env"
    shutil.copytree(shared_data / "mnist", root / "mnist")
    target = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(target.read_bytes()))
    raw[50] = (raw[50] + 1) % 10
    target.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setenv("CNNLAB_DATA", str(root))
    status = dataset_status("mnist")
    assert status["found"] and status["origin"] == "CNNLAB_DATA"
    assert status["checksums"] == "BAD"
    bad = [f for f in status["files"] if not f["ok"]]
    assert [f["name"] for f in bad] == ["t10k-labels-idx1-ubyte.gz"]


def test_unpacked_files_preferred_and_equal(isolated, shared_data, mnist_test):
    from cnnlab.data import load_dataset

    folder = isolated / "mine" / "mnist"
    folder.mkdir(parents=True)
    for role in ("test_images", "test_labels"):
        f = DATASETS["mnist"].files[role]
        (folder / f.raw_name).write_bytes(
            gzip.decompress((shared_data / "mnist" / f.name).read_bytes())
        )
    for role in ("train_images", "train_labels"):
        f = DATASETS["mnist"].files[role]
        (folder / f.name).symlink_to(shared_data / "mnist" / f.name)
    ds = load_dataset("mnist", "test", data_dir=isolated / "mine", download=False)
    assert ds.images.equal(mnist_test.images) and ds.labels.equal(mnist_test.labels)
    status = dataset_status("mnist", isolated / "mine")
    assert status["checksums"] == "OK"
    assert [f["name"] for f in status["files"]][2:] == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]


def test_cnnlab_data_may_name_the_dataset_folder(isolated, monkeypatch, shared_data):
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data / "fashion-mnist"))
    assert locate_dataset("fashion-mnist", download=False) == shared_data / "fashion-mnist"
