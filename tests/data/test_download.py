"""The downloader against a local threaded HTTP server serving the real files.

Mirrors: good/ (the real MNIST files), corrupt/ (a flipped byte), truncated/ (1,000 bytes),
short/ (announces the full Content-Length, then closes early), empty/ (404 for everything),
huge/ (1.2 MB of zeros), unpacked/ (the decompressed bytes under the .gz name).
"""

from __future__ import annotations

import functools
import gzip
import http.server
import threading
from pathlib import Path

import pytest

from cnnlab import fileio
from cnnlab.data import DATASETS, download_file, load_dataset, locate_dataset
from cnnlab.errors import DataError

INFO = DATASETS["mnist"]
LABELS = INFO.files["test_labels"]  # 4,542 bytes: cheap for the failure cases


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/short/"):
            body = (Path(self.directory) / "good" / self.path[7:]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 3])
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    for sub in ("good", "corrupt", "truncated", "empty", "huge", "unpacked"):
        (root / sub).mkdir()
    for f in INFO.files.values():
        (root / "good" / f.name).symlink_to(shared_data / "mnist" / f.name)
    content = (shared_data / "mnist" / LABELS.name).read_bytes()
    flipped = bytearray(content)
    flipped[len(content) // 2] ^= 0xFF
    (root / "corrupt" / LABELS.name).write_bytes(bytes(flipped))
    (root / "truncated" / LABELS.name).write_bytes(content[:1000])
    (root / "huge" / LABELS.name).write_bytes(bytes(1_200_000))
    (root / "unpacked" / LABELS.name).write_bytes(gzip.decompress(content))
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "cnnlab"


def _fail(mirrors, dest) -> str:
    with pytest.raises(DataError) as info:
        download_file(LABELS, dest, mirrors, timeout=10)
    assert "\n" not in str(info.value)
    if Path(dest).exists():  # neither the canonical name nor a temp file is left behind
        assert list(Path(dest).iterdir()) == []
    return str(info.value)


def test_download_good_mirror_into_cache(server, cache):
    folder = locate_dataset("mnist", mirrors=[server + "/empty/", server + "/good/"])
    assert folder == cache / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in INFO.files.values())
    ds = load_dataset("mnist", "test", download=False)
    assert ds.images.shape == (10000, 1, 28, 28)
    # found in the cache now: a second call needs no mirror at all
    assert locate_dataset("mnist", mirrors=[]) == folder


def test_corrupted_file_rejected(server, tmp_path):
    url = f"{server}/corrupt/{LABELS.name}"
    assert _fail([server + "/corrupt"], tmp_path) == (
        f"download of {LABELS.name} failed: {url}: checksum mismatch: 4,542 bytes with sha256 "
        f"{_sha(tmp_path, server, 'corrupt')[:12]}..., expected 4,542 bytes with sha256 "
        "f7ae60f92e00..."
    )


def _sha(tmp_path, server, sub) -> str:
    import hashlib
    import urllib.request

    with urllib.request.urlopen(f"{server}/{sub}/{LABELS.name}") as resp:
        return hashlib.sha256(resp.read()).hexdigest()


def test_truncated_file_rejected(server, tmp_path):
    message = _fail([server + "/truncated/"], tmp_path)
    assert message.startswith(
        f"download of {LABELS.name} failed: {server}/truncated/{LABELS.name}: checksum mismatch: "
        "1,000 bytes with sha256 "
    )
    assert message.endswith("expected 4,542 bytes with sha256 f7ae60f92e00...")


def test_short_transfer_rejected(server, tmp_path):
    url = f"{server}/short/{LABELS.name}"
    assert _fail([server + "/short/"], tmp_path) in (
        f"download of {LABELS.name} failed: {url}: connection closed after 1,514 bytes "
        "(truncated transfer)",
        f"download of {LABELS.name} failed: {url}: got 1,514 of 4,542 bytes (truncated transfer)",
    )


def test_404(server, tmp_path):
    url = f"{server}/empty/{LABELS.name}"
    assert _fail([server + "/empty/"], tmp_path) == (
        f"download of {LABELS.name} failed: {url}: HTTP 404 File not found"
    )


def test_all_mirrors_listed_and_fallback(server, tmp_path):
    mirrors = [server + "/empty/", server + "/corrupt/", server + "/good/"]
    assert download_file(LABELS, tmp_path, mirrors).read_bytes() == (
        Path(tmp_path / LABELS.name).read_bytes()
    )
    message = _fail(mirrors[:2], tmp_path / "other")
    assert message.count(server) == 2 and "HTTP 404" in message and "checksum mismatch" in message


def test_offline_error_lists_places_and_download_failure(server, cache):
    with pytest.raises(DataError) as info:
        locate_dataset("mnist", mirrors=[server + "/empty/"])
    message = str(info.value)
    assert "\n" not in message
    assert f"cache {cache / 'mnist'} (no such folder)" in message
    assert "system /usr/share/datasets/mnist" in message
    assert f"download failed: download of train-images-idx3-ubyte.gz failed: {server}" in message
    assert "CNNLAB_DATA" in message and "--data-dir" in message
    leftovers = list((cache / "mnist").iterdir()) if (cache / "mnist").exists() else []
    assert leftovers == []


def test_interrupted_write_leaves_no_file(server, tmp_path, monkeypatch):
    def boom(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        download_file(LABELS, tmp_path, [server + "/good/"])
    assert list(tmp_path.iterdir()) == []


def test_oversized_body_refused(server, tmp_path):
    url = f"{server}/huge/{LABELS.name}"
    assert _fail([server + "/huge/"], tmp_path) == (
        f"download of {LABELS.name} failed: {url}: more than 1,068,592 bytes, not this file; "
        "refused"
    )


def test_unpacked_body_saved_under_unpacked_name(server, tmp_path, shared_data):
    path = download_file(LABELS, tmp_path, [server + "/unpacked/"])
    assert path == tmp_path / "t10k-labels-idx1-ubyte"
    assert path.read_bytes() == gzip.decompress((shared_data / "mnist" / LABELS.name).read_bytes())
