"""The explainer's numbers and its JSON API, checked against torch and the model summary.

No training: an untrained model has the same arithmetic as a trained one.
"""

from __future__ import annotations

import base64
import io
import re
from importlib import resources
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.models.summary import summary
from cnnlab.serve.explain import Explainer, theoretical_box

DIGITS = tuple("0123456789")


def explainer(model, shape=(1, 28, 28)) -> Explainer:
    return Explainer(model, None, shape, DIGITS[: _classes(model)])


def _classes(model) -> int:
    return getattr(model, "cnnlab_args", {}).get("num_classes", 10)


def image(shape=(1, 28, 28), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def decode(doc: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(doc["data"]), "<f4").reshape(doc["shape"]).copy()


# ---------------------------------------------------------------- layers and activations


@pytest.mark.parametrize("name", ["tutorial_cnn", "model_a", "speednet"])
def test_layers_are_the_summary_leaves_with_their_shapes(name):
    model = create_model(name)
    ex = explainer(model)
    modules = dict(model.named_modules())
    leaves = [
        r
        for r in summary(model, (1, 28, 28), depth=99).rows
        if not list(modules[r.name].children())
    ]
    assert [(la.name, la.shape) for la in ex.layers] == [(r.name, r.output_shape) for r in leaves]
    acts = ex.activations(image())
    for layer in ex.layers:
        assert acts.outputs[layer.name].shape == layer.shape
    # the last layer's output is the logits: its softmax is the reported probabilities
    last = torch.from_numpy(acts.outputs[ex.layers[-1].name])
    np.testing.assert_allclose(last.softmax(-1).numpy(), acts.probs, rtol=1e-5, atol=1e-7)


def test_activations_survive_in_place_relu():
    """speednet's ReLU(inplace=True) overwrites bn1's output; the explainer keeps a copy."""
    model = create_model("speednet")
    acts = explainer(model).activations(image())
    assert (acts.outputs["bn1"] < 0).any()
    np.testing.assert_allclose(acts.outputs["relu1"], np.maximum(acts.outputs["bn1"], 0))


# ---------------------------------------------------------------- one unit's arithmetic


@pytest.mark.parametrize(
    "k, stride, padding, dilation, groups",
    [(3, 1, 0, 1, 1), (3, 2, 1, 1, 1), (5, 1, 2, 1, 1), (3, 1, 2, 2, 1), (4, 3, 1, 1, 2)],
)
def test_conv_arithmetic_sums_to_the_unit_value(k, stride, padding, dilation, groups):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
    model = nn.Sequential(conv, nn.ReLU())
    ex = Explainer(model, None, (4, 12, 12), ("a",))
    x = image((4, 12, 12))
    reference = F.conv2d(
        torch.from_numpy(x)[None], conv.weight, conv.bias, stride, padding, dilation, groups
    )[0].detach()
    c, h, w = reference.shape
    for ch, row, col in [(0, 0, 0), (c - 1, h - 1, w - 1), (c // 2, h // 2, w // 3)]:
        doc = ex.unit(x, "0", ch, row, col)
        a = doc["arithmetic"]
        assert a["type"] == "conv"
        assert doc["value"] == pytest.approx(float(reference[ch, row, col]), abs=1e-5)
        assert a["total"] == pytest.approx(doc["value"], abs=1e-5)
        assert a["total"] == pytest.approx(a["sum"] + a["bias"], abs=1e-12)
        products = np.asarray(a["products"])
        np.testing.assert_allclose(products, np.asarray(a["patch"]) * np.asarray(a["kernel"]))
        assert len(a["in_channels"]) == 4 // groups
        # padding cells are exactly the window positions outside the input
        outside = [[not (0 <= r < 12 and 0 <= q < 12) for q in a["cols"]] for r in a["rows"]]
        assert a["padded"] == outside
        assert np.all(np.asarray(a["patch"])[:, np.asarray(outside)] == 0)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_arithmetic_names_the_winner_or_the_mean(kind):
    pool = nn.MaxPool2d(3, 2, padding=1) if kind == "max" else nn.AvgPool2d(3, 2, padding=1)
    ex = Explainer(nn.Sequential(pool), None, (2, 9, 9), ("a",))
    x = image((2, 9, 9)) - 0.5
    ref, idx = F.max_pool2d(torch.from_numpy(x)[None], 3, 2, 1, return_indices=True)
    for row, col in [(0, 0), (2, 3), (4, 4)]:
        doc = ex.unit(x, "0", 1, row, col)
        a = doc["arithmetic"]
        assert a["result"] == pytest.approx(doc["value"], abs=1e-6)
        if kind == "max":
            y, q = a["rows"][a["winner"][0]], a["cols"][a["winner"][1]]
            assert y * 9 + q == int(idx[0, 1, row, col])
        else:
            assert a["count"] == 9  # count_include_pad: the padding zeros count


def test_dense_arithmetic_lists_the_largest_terms():
    ex = explainer(create_model("tutorial_cnn"))
    doc = ex.unit(image(), "fc1", 7)
    a = doc["arithmetic"]
    assert a["inputs"] == 576
    assert a["total"] == pytest.approx(doc["value"], abs=1e-5)
    sizes = [abs(t["product"]) for t in a["top"]]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 10
    assert a["sum"] == pytest.approx(sum(t["product"] for t in a["top"]) + a["rest"])


def test_batch_norm_unit_shows_its_formula():
    model = create_model("speednet")
    model.bn1.running_mean.fill_(0.3)
    model.bn1.running_var.fill_(2.0)
    ex = explainer(model)
    doc = ex.unit(image(), "bn1", 2, 3, 4)
    a, n = doc["arithmetic"], doc["arithmetic"]["norm"]
    expect = (a["input"] - n["mean"]) / np.sqrt(n["var"] + n["eps"]) * n["weight"] + n["bias"]
    assert expect == pytest.approx(doc["value"], abs=1e-5)


# ---------------------------------------------------------------- receptive fields


@pytest.mark.parametrize("name", ["tutorial_cnn", "model_a", "speednet"])
def test_effective_rf_is_zero_outside_the_theoretical_box(name):
    ex = explainer(create_model(name))
    x = image(seed=1)
    for layer in ex.layers:
        if len(layer.shape) != 3:
            continue
        c, h, w = layer.shape
        doc = ex.unit(x, layer.name, c - 1, h // 2, w // 2)
        top, bottom, left, right = doc["box_clipped"]
        erf = doc["erf"].copy()
        if layer.category == "conv":  # (a ReLU or max-pool unit may pass no gradient at all)
            assert erf[top : bottom + 1, left : right + 1].max() > 0, layer.name
        erf[top : bottom + 1, left : right + 1] = 0
        assert erf.max() == 0, f"{name} {layer.name}: gradient outside the box"


def test_box_size_is_the_summary_receptive_field():
    ex = explainer(create_model("tutorial_cnn"))
    conv3 = ex.layer("conv3")
    assert conv3.rf == (18, 18) and conv3.jump == (4, 4)
    top, bottom, left, right = theoretical_box(conv3, 1, 2)
    assert (bottom - top + 1, right - left + 1) == conv3.rf
    assert (top, left) == (4, 8)  # centre 8.5 + 4 * unit, half-width 8.5
    dense = ex.layer("fc1")  # valid convolutions and floor pooling never reach rows/cols 26-27
    assert theoretical_box(dense, 0, 0) == (0, 25, 0, 25)


def test_unit_leaves_the_parameters_alone():
    model = create_model("tutorial_cnn")
    explainer(model).unit(image(), "conv3", 0, 1, 1)
    assert all(p.grad is None for p in model.parameters())


def test_unit_errors_name_the_problem():
    ex = explainer(create_model("tutorial_cnn"))
    with pytest.raises(CnnlabError, match="layer 'conv9' not found; layers: conv1"):
        ex.unit(image(), "conv9", 0)
    with pytest.raises(CnnlabError, match=r"channel=32 is outside 0..31"):
        ex.unit(image(), "conv1", 32, 0, 0)
    with pytest.raises(CnnlabError, match="row=26 is outside 0..25"):
        ex.unit(image(), "conv1", 0, 26, 0)
    with pytest.raises(CnnlabError, match="the model wants"):
        ex.activations(np.zeros((1, 20, 20), np.float32))
    with pytest.raises(CnnlabError, match="not a convolution"):
        ex.kernels("relu1")


def test_captures_are_per_thread():
    """A forward pass in another thread (a /predict request) is not recorded."""
    import threading

    model = create_model("tutorial_cnn")
    ex = explainer(model)
    seen = []
    ex._local.outputs, ex._local.wanted, ex._local.inputs = {}, None, {}
    try:
        t = threading.Thread(target=lambda: seen.append(model(torch.zeros(1, 1, 28, 28)).shape))
        t.start()
        t.join()
        assert ex._local.outputs == {} and seen
    finally:
        ex._local.outputs = ex._local.wanted = ex._local.inputs = None


# ---------------------------------------------------------------- the HTTP API


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    from cnnlab.data import Normalizer
    from cnnlab.run import Run
    from cnnlab.serve.app import ServeSettings, create_app

    torch.manual_seed(0)
    run = Run(
        model=create_model("tutorial_cnn").eval(),
        normalizer=Normalizer("half"),
        classes=DIGITS,
        input_shape=(1, 28, 28),
        dataset="mnist",
    )
    app = create_app(run, ServeSettings(max_upload_bytes=100_000))
    with TestClient(app) as c:
        yield c


def seven_png() -> str:
    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line([(80, 60), (200, 60), (120, 230)], fill=255, width=22)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def test_activations_endpoint(client):
    model = client.get("/explain/model").json()
    assert [la["name"] for la in model["layers"]][:4] == ["conv1", "relu1", "pool1", "conv2"]
    r = client.post("/explain/activations", json={"image": seven_png()})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [la["name"] for la in doc["layers"]] == [la["name"] for la in model["layers"]]
    for got, want in zip(doc["layers"], model["layers"], strict=True):
        assert got["shape"] == want["shape"]
        assert np.abs(decode(got)).max() == pytest.approx(got["max_abs"])
    picture = decode(doc["image"])
    assert picture.shape == (1, 28, 28) and picture.min() >= 0 and picture.max() == 1
    logits = torch.from_numpy(decode(doc["layers"][-1]))
    assert doc["label"] == int(logits.argmax()) and doc["class_name"] == DIGITS[doc["label"]]
    assert doc["ms"] > 0


def test_unit_endpoint_matches_the_activations(client):
    png = seven_png()
    acts = client.post("/explain/activations", json={"image": png}).json()
    conv2 = decode(next(la for la in acts["layers"] if la["name"] == "conv2"))
    r = client.post(
        "/explain/unit", json={"image": png, "layer": "conv2", "channel": 5, "row": 4, "col": 6}
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["value"] == pytest.approx(float(conv2[5, 4, 6]), abs=1e-6)
    assert doc["arithmetic"]["total"] == pytest.approx(doc["value"], abs=1e-4)
    assert doc["receptive_field"] == [8, 8]
    top, bottom, left, right = doc["box"]
    assert (bottom - top + 1, right - left + 1) == (8, 8)
    erf = decode(doc["erf"])
    assert erf.max() == pytest.approx(doc["erf_max"])
    erf[top : bottom + 1, left : right + 1] = 0
    assert erf.max() == 0


@pytest.mark.parametrize(
    "body, status, detail",
    [
        ({"image": None, "layer": "conv1", "channel": 0}, 422, '"image" must be a base64'),
        ({"image": "", "layer": "conv1", "channel": 0}, 400, "empty image"),
        ({"image": "@@", "layer": "conv1", "channel": 0}, 400, "invalid base64"),
        ({"layer": "conv1"}, 422, "channel"),
        ({"layer": "nope", "channel": 0}, 422, "layer 'nope' not found"),
        ({"layer": "conv1", "channel": 0, "row": 99}, 422, "row=99 is outside 0..25"),
        ({"layer": "conv1", "channel": "x"}, 422, "channel"),
    ],
)
def test_unit_endpoint_rejects_bad_requests(client, body, status, detail):
    body = {"image": seven_png(), **body}
    r = client.post("/explain/unit", json=body)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]


def test_oversized_body_is_413(client):
    r = client.post("/explain/activations", json={"image": "A" * 300_000})
    assert r.status_code == 413


def test_kernels_endpoint(client):
    doc = client.get("/explain/kernels/conv2").json()
    assert doc["shape"] == [64, 32, 3, 3] and len(doc["bias"]) == 64
    model = client.app.state.service.run.model
    np.testing.assert_array_equal(decode(doc), model.conv2.weight.detach().numpy())
    r = client.get("/explain/kernels/relu1")
    assert r.status_code == 404 and "not a convolution" in r.json()["detail"]


def test_samples_are_test_images_one_per_class(client):
    samples = client.get("/explain/samples").json()["samples"]
    assert sorted(s["class_name"] for s in samples) == list(DIGITS)
    img = Image.open(io.BytesIO(base64.b64decode(samples[0]["png"])))
    assert img.size == (28, 28)


def test_api_is_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/explain/activations", "/explain/unit", "/explain/model"):
        assert path in paths
    body = paths["/explain/unit"]["post"]["requestBody"]["content"]["application/json"]
    assert {"image", "layer", "channel", "row", "col"} <= set(body["schema"]["properties"])
    assert "/explain" not in paths  # the page itself is not API


def test_page_loads_nothing_from_elsewhere(client):
    r = client.get("/explain")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    static = resources.files("cnnlab.serve") / "static"
    for name in ("explain.html", "explain.js", "explain.css"):
        text = (static / name).read_text()
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), name
        assert "url(http" not in text and "@import" not in text
    html = (static / "explain.html").read_text()
    for testid in ("draw-canvas", "predicted-label"):
        assert f'data-testid="{testid}"' in html


def test_explainer_needs_a_torch_model(client):
    from cnnlab.serve.explain import Explainer

    onnx_like = SimpleNamespace(model=None, format="onnx", input_shape=(1, 28, 28))
    with pytest.raises(CnnlabError, match="needs a PyTorch checkpoint"):
        Explainer.from_run(onnx_like)


# ---------------------------------------------------------------- cnnlab explain


def test_explain_command_serves_and_opens_the_page(trained_run, monkeypatch, capsys):
    import uvicorn

    from cnnlab.cli import main, serve_cmds

    seen, opened = {}, []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setattr(serve_cmds, "_open_when_up", opened.append)
    assert main(["explain", str(trained_run), "--port", "8123"]) == 0
    assert opened == ["http://127.0.0.1:8123/explain"] and seen["port"] == 8123
    assert main(["explain", str(trained_run), "--port", "8123", "--no-browser"]) == 0
    assert len(opened) == 1
    assert "/explain/unit" in seen["app"].openapi()["paths"]
    assert "serving tutorial_cnn" in capsys.readouterr().out


def test_explain_command_missing_run_is_one_line(capsys, tmp_path):
    from cnnlab.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["explain", str(tmp_path / "no-such-run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and "no-such-run" in err and err.count("\n") == 1


def test_docstring_examples_run():
    import doctest

    import cnnlab.serve.explain as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
