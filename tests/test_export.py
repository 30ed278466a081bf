"""cnnlab export (ONNX, TorchScript, safetensors + manifest) and cnnlab predict on every format."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from cnnlab.cli import main
from cnnlab.errors import CheckpointError, CnnlabError


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory, capsys_module) -> dict:
    """All three formats exported once through the CLI; {format: (path, printed text)}."""
    out = tmp_path_factory.mktemp("export")
    files = {"onnx": "m.onnx", "torchscript": "m.pt", "safetensors": "m.safetensors"}
    result = {}
    for fmt, name in files.items():
        code = main(["export", str(trained_run), "--format", fmt, "--out", str(out / name)])
        assert code == 0
        result[fmt] = (out / name, capsys_module())
    return result


@pytest.fixture(scope="module")
def capsys_module():
    """Module-scoped stdout capture (pytest's capsys is function-scoped): call it to take the
    text printed since the last call."""
    buf = io.StringIO()

    def take() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    with contextlib.redirect_stdout(buf):
        yield take


@pytest.fixture(scope="module")
def images(tmp_path_factory, shared_data) -> tuple[list[Path], list[int]]:
    """16 real MNIST test digits and a drawn '1' as PNG files."""
    from cnnlab.data import load_dataset

    folder = tmp_path_factory.mktemp("images")
    test = load_dataset("mnist", "test", data_dir=shared_data / "mnist", download=False)
    paths, labels = [], []
    for i in range(16):
        path = folder / f"{i:02d}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(path)
        paths.append(path)
        labels.append(int(test.labels[i]))
    drawn = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(drawn).line((100, 20, 100, 180), fill=0, width=16)  # black on white
    drawn.save(folder / "zz_drawn_one.png")
    paths.append(folder / "zz_drawn_one.png")
    labels.append(1)
    return paths, labels


# ---------------------------------------------------------------- the three formats


def test_onnx_file_describes_itself(exported, trained_run):
    import onnx

    path, text = exported["onnx"]
    assert "round trip: ONNX Runtime vs PyTorch on 256 test images" in text
    diff = float(text.split("max abs diff ")[1].split()[0])
    assert diff < 1e-4
    assert "opset 18" in text
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # dynamic batch axis
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["classes"]) == [str(i) for i in range(10)]
    assert json.loads(props["normalizer"])["kind"] == "unit"
    assert json.loads(props["model_args"])["name"] == "tutorial_cnn"
    assert props["opset"] == "18" and props["style"] == "mnist"


def test_onnx_runtime_matches_pytorch_for_any_batch(exported, trained_run, shared_data):
    import onnxruntime as ort

    from cnnlab.data import load_dataset
    from cnnlab.run import load as load_model

    loaded = load_model(trained_run)
    test = load_dataset("mnist", "test", data_dir=shared_data / "mnist", download=False)
    session = ort.InferenceSession(str(exported["onnx"][0]), providers=["CPUExecutionProvider"])
    for n in (1, 3, 300):
        x = loaded.normalizer(test.images[1000 : 1000 + n])
        with torch.inference_mode():
            ref = loaded.model(x).numpy()
        got = session.run(["logits"], {"input": x.numpy()})[0]
        assert got.shape == (n, 10)
        assert np.abs(got - ref).max() < 1e-4


def test_torchscript_round_trip(exported, trained_run):
    path, text = exported["torchscript"]
    assert "torch.jit.load vs PyTorch" in text
    extra = {"cnnlab.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    manifest = json.loads(extra["cnnlab.json"])
    assert manifest["model_args"]["name"] == "tutorial_cnn"
    assert module(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_safetensors_manifest_rebuilds_without_pickle(exported):
    from safetensors.torch import load_file

    path, text = exported["safetensors"]
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["model_args"]["name"] == "tutorial_cnn"
    assert manifest["input_shape"] == [1, 28, 28]
    assert manifest["normalizer"] == {"kind": "unit"}
    assert manifest["classes"] == [str(i) for i in range(10)]
    assert manifest["style"] == "mnist" and manifest["weights"] == path.name
    assert set(load_file(str(path))) == set(manifest_keys(path))
    assert "max abs diff 0.00e+00" in text


def manifest_keys(path: Path) -> list[str]:
    from cnnlab.backends import load_manifest_model

    model, _ = load_manifest_model(path)
    return list(model.state_dict())


def test_predict_gives_the_same_top1_for_all_four(exported, trained_run, images, capsys):
    paths, labels = images
    sources = {
        "run folder": trained_run,
        "checkpoint": trained_run / "checkpoints" / "best.pt",
        "onnx": exported["onnx"][0],
        "safetensors": exported["safetensors"][0],
    }
    tops, probs = {}, {}
    for name, source in sources.items():
        assert main(["predict", str(source), *map(str, paths), "--json"]) == 0, name
        rows = json.loads(capsys.readouterr().out)
        tops[name] = [row["label"] for row in rows]
        probs[name] = np.array([row["probs"] for row in rows])
    for name in sources:
        np.testing.assert_allclose(probs[name], probs["run folder"], atol=1e-5, err_msg=name)
    assert all(t == tops["run folder"] for t in tops.values()), tops
    assert sum(a == b for a, b in zip(tops["run folder"], labels, strict=True)) >= 15
    assert tops["run folder"][-1] == 1  # the drawn '1'


# ---------------------------------------------------------------- failures


def test_failed_round_trip_fails_the_command_and_leaves_nothing(
    trained_run, tmp_path, monkeypatch, capsys
):
    import cnnlab.export as export

    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # any difference now counts as a mismatch
    out = tmp_path / "m.safetensors"
    with pytest.raises(SystemExit) as exc:
        main(["export", str(trained_run), "--format", "safetensors", "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: safetensors round trip failed: max abs logit difference")
    assert list(tmp_path.iterdir()) == []


def test_torchscript_unsupported_is_a_clear_error(trained_run, tmp_path, monkeypatch):
    import cnnlab.export as export

    def broken(*args, **kwargs):
        raise RuntimeError("TorchScript is not supported in this build")

    monkeypatch.setattr(torch.jit, "trace", broken)
    with pytest.raises(CnnlabError, match="TorchScript export is not supported.*--format onnx"):
        export.export_model(trained_run, "torchscript", tmp_path / "m.pt", check_images=8)
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_and_missing_run(tmp_path, capsys):
    from cnnlab.export import export_model

    with pytest.raises(CnnlabError, match="unknown export format 'keras'"):
        export_model(tmp_path, "keras", tmp_path / "x")
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "nope"), "--format", "onnx"])
    assert "nope" in capsys.readouterr().err


def test_tampered_safetensors_is_refused(exported, tmp_path):
    from cnnlab.backends import load_manifest_model

    path = exported["safetensors"][0]
    copy = tmp_path / path.name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    (tmp_path / "m.json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_manifest_model(copy)


def test_bad_onnx_file_is_a_checkpoint_error(tmp_path):
    from cnnlab.run import load

    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"this is not a protobuf")
    with pytest.raises(CheckpointError, match="cannot load ONNX model"):
        load(bogus)


def test_manifest_without_weights_is_a_checkpoint_error(tmp_path):
    from cnnlab.run import load

    manifest = {
        "model_args": {"name": "tutorial_cnn"},
        "input_shape": [1, 28, 28],
        "normalizer": {"kind": "unit"},
        "classes": list("0123456789"),
        "weights": "gone.safetensors",
    }
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="weights not found"):
        load(tmp_path / "m.json")


def test_onnx_time_limit_stops_a_slow_graph_and_the_session_goes_on(tmp_path):
    import time

    from _slow_onnx import write_slow_onnx
    from cnnlab.backends import InferenceTimeout
    from cnnlab.run import load

    run = load(write_slow_onnx(tmp_path / "slow.onnx", convs=120))
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    start = time.perf_counter()
    full = run.logits(x, time_limit=60.0)  # well within its limit: the same scores
    whole = time.perf_counter() - start
    np.testing.assert_array_equal(full, run.logits(x))
    start = time.perf_counter()
    with pytest.raises(InferenceTimeout, match=r"ran longer than 0.001 s and was stopped"):
        run.predict_arrays(x, time_limit=0.001)
    assert time.perf_counter() - start < whole / 2  # stopped, not run to the end
    np.testing.assert_array_equal(run.logits(x), full)  # the session still answers


def test_server_answers_from_an_onnx_file(exported, images):
    from fastapi.testclient import TestClient

    from cnnlab.run import load
    from cnnlab.serve.app import create_app

    paths, _ = images
    torch_pred = load(exported["safetensors"][0]).predict(paths[:4])
    with TestClient(create_app(load(exported["onnx"][0]))) as client:
        info = client.get("/model").json()
        assert info["format"] == "onnx" and info["model"] == "tutorial_cnn"
        for path, expected in zip(paths[:4], torch_pred, strict=True):
            body = client.post("/predict", files={"file": ("d.png", path.read_bytes())}).json()
            assert body["label"] == expected.label
            assert body["features"] is None  # ONNX Runtime exposes no inner layers
