"""`cnnlab datasets` and `cnnlab show-data`, run in-process through cnnlab.cli.main."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from PIL import Image

from cnnlab.cli import main


@pytest.fixture
def env(monkeypatch, tmp_path, shared_data):
    monkeypatch.setenv("CNNLAB_DATA", str(shared_data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return shared_data


def test_datasets_text(env, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"mnist          CNNLAB_DATA {env}/mnist  train 60,000, test 10,000  11.6 MB  checksums OK"
    )
    assert out[1] == "    train-images-idx3-ubyte.gz      9,912,422 bytes  sha256 OK"
    assert out[5].startswith(f"fashion-mnist  CNNLAB_DATA {env}/fashion-mnist  ")
    assert out[5].endswith("30.9 MB  checksums OK")
    assert out[-1] == "digits         built in (scikit-learn)  train 1,438, test 359  checksums n/a"


def test_datasets_json_not_found_and_bad(env, monkeypatch, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(env / "mnist", root / "mnist")
    labels = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.delenv("CNNLAB_DATA")
    assert main(["datasets", "--data-dir", str(root), "--json"]) == 1  # a BAD checksum
    status = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert status["mnist"]["checksums"] == "BAD" and status["mnist"]["origin"] == "--data-dir"
    assert [f["ok"] for f in status["mnist"]["files"]] == [True, True, True, False]
    assert status["fashion-mnist"]["found"] is False
    assert status["fashion-mnist"]["looked"][0] == {
        "origin": "--data-dir",
        "folder": str(root / "fashion-mnist"),
        "reason": "no such folder",
    }


def test_show_data_fashion_grid(env, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert (
        main(["show-data", "fashion-mnist", "--n", "10", "--out", str(out), "--split", "test"]) == 0
    )
    assert capsys.readouterr().out.strip() == f"wrote {out} (10 fashion-mnist test images)"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 200
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_show_data_missing_dataset_is_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as info:
        main(["show-data", "mnist", "--no-download", "--data-dir", str(tmp_path), "--out", "x.png"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("cnnlab: error: dataset 'mnist' not found. Looked in: --data-dir ")
    assert "download disabled" in err and "CNNLAB_DATA" in err and "--data-dir" in err
    assert not (tmp_path / "x.png").exists()


def test_show_data_unknown_name(capsys):
    with pytest.raises(SystemExit):
        main(["show-data", "cifar10", "--out", "x.png"])
    assert capsys.readouterr().err.startswith("cnnlab: error: unknown dataset 'cifar10'")


def test_show_data_n_limits(capsys):
    for n in ("0", "401"):
        with pytest.raises(SystemExit):
            main(["show-data", "digits", "--n", n, "--out", "x.png"])
        assert capsys.readouterr().err == f"cnnlab: error: --n {n}: draw between 1 and 400 images\n"


def test_show_data_image_folder_warns_on_bad_files(tmp_path, capsys):
    (tmp_path / "pics" / "a").mkdir(parents=True)
    (tmp_path / "pics" / "b").mkdir()
    Image.new("RGB", (50, 40), (200, 30, 30)).save(tmp_path / "pics" / "a" / "1.png")
    Image.new("L", (10, 10), 128).save(tmp_path / "pics" / "b" / "2.png")
    (tmp_path / "pics" / "b" / "bad.png").write_bytes(b"xx")
    out = tmp_path / "f.png"
    assert main(["show-data", str(tmp_path / "pics"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"wrote {out} (2 images from {tmp_path / 'pics'})\n"
    assert captured.err == (
        f"cnnlab: warning: skipping unreadable image: not a readable image: "
        f"{tmp_path / 'pics' / 'b' / 'bad.png'}\n"
    )
