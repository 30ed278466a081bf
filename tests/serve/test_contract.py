"""The server keeps the contract of its own /openapi.json.

Generated requests (hypothesis: valid images in every documented request body, and broken
bodies, types and sizes; path parameters filled with real and unknown values) go to every
documented operation; each answer's status must be listed for that operation and its JSON body
must validate against the documented schema. A request the server accepts must use a documented
request body (and a JSON body must match its schema), and every documented status must be
reachable. The app serves an untrained tutorial_cnn (the contract does not depend on accuracy);
a second app serves a model without torch modules, as an ONNX export is served.
"""

from __future__ import annotations

import base64
import io
import json
import random
from urllib.parse import quote

import jsonschema
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnlab.engine import checkpoint as ckpt
from cnnlab.models import create_model

UPLOAD_LIMIT = 20_000  # bytes; small so the 413 cases stay cheap
PIXEL_LIMIT = 40_000
RUNS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same requests on every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from cnnlab.run import load
    from cnnlab.serve.app import ServeSettings, create_app

    torch.manual_seed(0)
    model = create_model("tutorial_cnn")
    path = tmp_path_factory.mktemp("contract") / "untrained.pt"
    ckpt.save_checkpoint(
        path,
        {
            "format_version": ckpt.FORMAT_VERSION,
            "model_args": model.cnnlab_args,
            "model_state": model.state_dict(),
            "classes": [str(i) for i in range(10)],
            "dataset": "mnist",
            "input_shape": [1, 28, 28],
            "normalizer": {"kind": "unit"},
        },
    )
    limits = ServeSettings(max_upload_bytes=UPLOAD_LIMIT, max_pixels=PIXEL_LIMIT)
    return create_app(load(path), limits)


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def _numpy_run():
    """A run with no torch modules (what the server sees of an ONNX export)."""
    from cnnlab.run import Run

    class NumpyRun(Run):
        def logits(self, x: np.ndarray, *, time_limit: float | None = None) -> np.ndarray:
            return x.reshape(len(x), -1)[:, :10]

    return NumpyRun(model=None, classes=tuple("0123456789"), input_shape=(1, 28, 28),
                    format="onnx")  # fmt: skip


@pytest.fixture(scope="module")
def torchless(spec):
    from fastapi.testclient import TestClient

    from cnnlab.serve.app import ServeSettings, create_app

    app = create_app(_numpy_run(), ServeSettings(max_upload_bytes=UPLOAD_LIMIT))
    with TestClient(app) as c:
        assert c.get("/openapi.json").json()["paths"] == spec["paths"]  # one document
        yield c


@pytest.fixture(scope="module")
def spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def seen() -> dict[tuple[str, str], set[str]]:
    """Statuses answered per (method, path), filled by the tests below."""
    return {}


def _validate(instance, schema: dict, spec: dict) -> None:
    root = {**schema, "components": spec.get("components", {})}  # so "#/components/..." resolves
    jsonschema.Draft202012Validator(root).validate(instance)


def check(
    spec: dict, method: str, path: str, response, request_type: str | None = None, sent=None
) -> str:
    """Assert ``response`` matches the documented operation; return its status as a string.

    ``path`` is the documented (templated) path; ``sent`` the JSON document of the request, which
    must match the documented request schema if the server accepted it."""
    op = spec["paths"][path][method]
    status = str(response.status_code)
    where = f"{method.upper()} {path} ({request_type or 'no body'})"
    assert status in op["responses"], f"{where} answered {status}, not documented: {response.text}"
    content = op["responses"][status].get("content", {})
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    assert kind in content, f"{where} answered {status} as {kind!r}; documented: {list(content)}"
    if status.startswith("2") and request_type is not None:
        body = op.get("requestBody", {}).get("content", {})
        assert request_type in body, f"{where} was accepted but that body is not documented"
        if sent is not None:
            _validate(sent, body[request_type].get("schema", {}), spec)
    if kind == "application/json":
        _validate(response.json(), content[kind].get("schema", {}), spec)
    return status


def _record(seen, method, path, status) -> None:
    seen.setdefault((method, path), set()).add(status)


def test_checker_catches_undocumented_answers(spec):
    """The checker itself: an undocumented status, a body off the schema, an unlisted body."""

    class Fake:
        def __init__(self, status, body):
            self.status_code, self.text = status, json.dumps(body)
            self.headers = {"content-type": "application/json"}

        def json(self):
            return json.loads(self.text)

    with pytest.raises(AssertionError, match="answered 201, not documented"):
        check(spec, "post", "/predict", Fake(201, {}))
    with pytest.raises(jsonschema.ValidationError):
        check(spec, "post", "/predict", Fake(400, {"error": "no detail field"}))
    with pytest.raises(jsonschema.ValidationError):
        check(spec, "post", "/predict", Fake(200, {"label": "seven"}))
    with pytest.raises(AssertionError, match="not documented"):
        check(spec, "post", "/predict", Fake(200, {}), request_type="image/gif")
    with pytest.raises(AssertionError, match="answered 400, not documented"):
        check(spec, "get", "/explain/kernels/{layer}", Fake(400, {"detail": "x"}))
    accepted = Fake(200, {})
    with pytest.raises(jsonschema.ValidationError):  # a unit request off the documented schema
        sent = {"image": "", "layer": "conv1", "channel": "5"}
        check(spec, "post", "/explain/unit", accepted, "application/json", sent)


def test_every_api_route_is_documented(app, client, spec):
    """Routes left out of the document are pages (HTML), not API operations."""
    from fastapi.routing import APIRoute

    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        if route.include_in_schema:
            for method in route.methods:
                assert method.lower() in spec["paths"][route.path], (method, route.path)
        else:
            assert client.get(route.path).headers["content-type"].startswith("text/html")
    assert {"/predict", "/model", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"image/png", "image/jpeg", "image/webp"} <= set(body)  # raw image bodies


@pytest.fixture(scope="module")
def layers(client) -> list[dict]:
    """The served model's layers as GET /explain/model lists them."""
    return client.get("/explain/model").json()["layers"]


UNKNOWN_LAYERS = ["no-such-layer", "CONV1", "conv1 ", "conv", "fc1.weight", "ß", "a b", "%", "a/b"]


def path_values(path: str, layers: list[dict]) -> list[tuple[str, str]]:
    """``path`` with its parameters filled: (concrete path, expected status) pairs."""
    if "{" not in path:
        return [(path, "200")]
    assert path == "/explain/kernels/{layer}", f"no test values for the parameters of {path}"
    real = [(la["name"], "200" if la["category"] == "conv" else "404") for la in layers]
    assert {"200", "404"} <= {want for _, want in real}  # convolutions and other layers
    unknown = [(name, "404") for name in UNKNOWN_LAYERS]
    return [(path.format(layer=quote(name, safe="")), want) for name, want in real + unknown]


def test_get_operations_match(client, spec, seen, layers):
    for path, ops in spec["paths"].items():
        if "get" in ops:
            for url, want in path_values(path, layers):
                response = client.get(url)
                status = check(spec, "get", path, response)
                _record(seen, "get", path, status)
                assert status == want, (url, response.text)


@RUNS
@given(name=st.text(max_size=12).filter(lambda t: t not in ("", ".", "..")))
def test_any_layer_name_gets_a_documented_answer(client, spec, seen, layers, name):
    response = client.get("/explain/kernels/" + quote(name, safe=""))
    status = check(spec, "get", "/explain/kernels/{layer}", response)
    _record(seen, "get", "/explain/kernels/{layer}", status)
    convs = {la["name"] for la in layers if la["category"] == "conv"}
    assert status == ("200" if name in convs else "404"), response.text


# -- POST /predict -------------------------------------------------------------------------------
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def _image(fmt: str, h: int, w: int, seed: int, mode: str = "L") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == "L" else (h, w, 3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, format=fmt)
    return buf.getvalue()


def _send(client, media_type: str, data: bytes, how: str):
    """POST one encoded image as the documented ``media_type`` (``how`` varies JSON forms)."""
    if media_type == "multipart/form-data":
        return client.post("/predict", files={"file": ("upload", data, "application/octet-stream")})
    if media_type == "application/json":
        text = base64.b64encode(data).decode()
        if how == "data-url":
            text = "data:image/png;base64," + text
        return client.post("/predict", json={"image": text})
    return client.post("/predict", content=data, headers={"content-type": media_type})


images = st.builds(
    _image,
    st.sampled_from(list(FORMATS)),
    st.integers(1, 80),
    st.integers(1, 80),
    st.integers(0, 2**31),
    st.sampled_from(["L", "RGB"]),
)


BODY_TYPES = ["multipart/form-data", "application/json", *FORMATS.values()]


@RUNS
@given(
    data=images, how=st.sampled_from(["plain", "data-url"]), media_type=st.sampled_from(BODY_TYPES)
)
def test_valid_images_in_every_body_type(client, spec, seen, data, how, media_type):
    """Every way the server takes an image (any image/* type: it reads the bytes' format)
    must be a documented request body."""
    response = _send(client, media_type, data, how)
    status = check(spec, "post", "/predict", response, media_type)
    _record(seen, "post", "/predict", status)
    if len(data) <= UPLOAD_LIMIT:
        if _uniform(data):  # one flat colour: nothing to classify
            assert status == "422" and "blank" in response.text, response.text
            return
        assert status == "200", response.text
        assert len(response.json()["probs"]) == 10


def _uniform(data: bytes) -> bool:
    from cnnlab.images import is_blank

    return is_blank(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), float) / 255)


def _json_values():
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["image", "file", "x"]), inner, max_size=3)
        ),
        max_leaves=6,
    )


def _big(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


bad_requests = st.one_of(
    # random bytes under any content type, documented or not
    st.tuples(
        st.sampled_from(
            ["image/png", "image/gif", "application/json", "text/plain", "", "application/xml",
             "multipart/form-data; boundary=x", "application/problem+json"]
        ),
        st.binary(max_size=300),
    ).map(lambda t: ("raw", t[0], t[1])),
    # any JSON document
    _json_values().map(lambda v: ("raw", "application/json", json.dumps(v).encode())),
    # bodies over the upload limit
    st.integers(UPLOAD_LIMIT + 1, 2 * UPLOAD_LIMIT).map(
        lambda n: ("raw", "image/png", _big(n, n))
    ),
    # decodable images the server does not take, or too many pixels
    st.sampled_from(["GIF", "BMP", "TIFF"]).map(
        lambda f: ("raw", "image/png", _image(f, 9, 9, 0))
    ),
    st.integers(201, 300).map(
        lambda side: ("raw", "image/png", _image("PNG", side, side, 0)[:UPLOAD_LIMIT])
    ),
    # multipart without the 'file' field, or an empty one
    st.sampled_from(["photo", "file"]).map(lambda name: ("multipart", name, b"")),
)  # fmt: skip


@RUNS
@given(case=bad_requests)
def test_broken_requests_get_documented_errors(client, spec, seen, case):
    how, kind, data = case
    if how == "multipart":
        response = client.post("/predict", files={kind: ("a.png", data, "image/png")})
    else:
        headers = {"content-type": kind} if kind else {}
        response = client.post("/predict", content=data, headers=headers)
    status = check(spec, "post", "/predict", response)
    _record(seen, "post", "/predict", status)
    assert status.startswith("4") or status == "200", response.text


# -- POST /explain/activations and /explain/unit ------------------------------------------------
EXPLAIN_POSTS = ["/explain/activations", "/explain/unit"]


def _b64(data: bytes, how: str = "plain") -> str:
    text = base64.b64encode(data).decode()
    return "data:image/png;base64," + text if how == "data-url" else text


def _post_explain(client, spec, seen, path: str, body, media_type="application/json"):
    """POST ``body`` (a JSON document, or raw bytes) and check the answer; return its status."""
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers={"content-type": media_type})
        sent = None
    else:
        response = client.post(path, content=json.dumps(body), headers={"content-type": media_type})
        sent = body
    status = check(spec, "post", path, response, media_type, sent)
    _record(seen, "post", path, status)
    return status, response


def _units(layers: list[dict]):
    """A valid unit of any layer: layer name, channel and (for (C, H, W) layers) row and col."""

    def coordinates(layer):
        shape = layer["shape"]
        fields = {"layer": st.just(layer["name"]), "channel": st.integers(0, shape[0] - 1)}
        if len(shape) == 3:
            fields |= {"row": st.integers(0, shape[1] - 1), "col": st.integers(0, shape[2] - 1)}
        return st.fixed_dictionaries(fields)

    return st.sampled_from(layers).flatmap(coordinates)


@RUNS
@given(data=images, how=st.sampled_from(["plain", "data-url"]), draw=st.data())
def test_explain_takes_valid_images(client, spec, seen, layers, data, how, draw):
    """Both explain endpoints answer any PNG, JPEG or WebP in base64 (plain or a data: URL)."""
    path = draw.draw(st.sampled_from(EXPLAIN_POSTS))
    body = {"image": _b64(data, how)}
    if path == "/explain/unit":
        body |= draw.draw(_units(layers))
    status, response = _post_explain(client, spec, seen, path, body)
    if len(data) > UPLOAD_LIMIT:
        assert status == "413", response.text
        return
    assert status == "200", response.text
    doc = response.json()
    if path == "/explain/unit":
        assert doc["layer"] == body["layer"] and doc["unit"][0] == body["channel"]
    else:
        assert [la["name"] for la in doc["layers"]] == [la["name"] for la in layers]


def _digit_png() -> bytes:
    return _image("PNG", 28, 28, 1)


FIELD_VALUES = (
    st.integers(-(2**70), 2**70) | st.integers(-2, 30) | st.floats() | st.text(max_size=8)
    | st.none() | st.booleans() | st.lists(st.integers(), max_size=2)
)  # fmt: skip


def _broken_explain(layers: list[dict]):
    names = [la["name"] for la in layers]
    png = _b64(_digit_png())
    unit_fields = st.fixed_dictionaries(
        {},
        optional={
            "layer": st.sampled_from(names) | st.text(max_size=8) | FIELD_VALUES,
            "channel": FIELD_VALUES,
            "row": FIELD_VALUES,
            "col": FIELD_VALUES,
        },
    )

    def json_unit(data: bytes) -> tuple[str, dict]:
        return "application/json", {"image": _b64(data), "layer": names[0], "channel": 0}

    good = json.dumps({"image": png, "layer": names[0], "channel": 0}).encode()
    other_types = ["text/plain", "image/png", "", "multipart/form-data", "application/jsonx"]
    return st.one_of(
        # random bytes as JSON, or under a type the explainer does not take
        st.tuples(st.sampled_from(["application/json", *other_types]), st.binary(max_size=200)),
        # any JSON document
        _json_values().map(lambda v: ("application/json", v)),
        # a real image with broken, missing or out-of-range unit fields
        unit_fields.map(lambda f: ("application/json", {"image": png, **f})),
        # a good request under another Content-Type
        st.sampled_from(other_types).map(lambda kind: (kind, good)),
        # images the server does not take, too many pixels, too many bytes
        st.sampled_from(["GIF", "BMP", "TIFF"]).map(lambda f: json_unit(_image(f, 9, 9, 0))),
        st.integers(201, 400).map(lambda side: json_unit(_blank(side))),
        st.integers(UPLOAD_LIMIT + 1, 2 * UPLOAD_LIMIT).map(lambda n: json_unit(_big(n, n))),
        st.integers(0, 10_000).map(
            lambda n: ("application/json", b'{"image": "' + b"A" * (100_000 + n) + b'"}')
        ),
    )


def _blank(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


@RUNS
@given(draw=st.data())
def test_explain_broken_requests_get_documented_errors(client, spec, seen, layers, draw):
    path = draw.draw(st.sampled_from(EXPLAIN_POSTS))
    media_type, body = draw.draw(_broken_explain(layers))
    status, response = _post_explain(client, spec, seen, path, body, media_type)
    assert status.startswith("4") or status == "200", response.text


def _explain_cases(layers: list[dict]) -> list[tuple[str, dict | bytes, str, str]]:
    """(Content-Type, body, status, a piece of the detail) that every explain POST answers."""
    png = _b64(_digit_png())
    conv = next(la for la in layers if la["category"] == "conv")
    c, h, w = conv["shape"]
    unit = {"image": png, "layer": conv["name"], "channel": c - 1, "row": h - 1, "col": w - 1}
    return [
        ("application/json", unit, "200", ""),
        ("application/json", b"{not json", "400", "invalid JSON"),
        ("application/json", {**unit, "image": "@@"}, "400", "invalid base64"),
        ("application/json", {**unit, "image": _b64(_blank(201))}, "400", "(limit 40,000 pixels)"),
        (
            "application/json",
            {**unit, "image": _b64(_big(UPLOAD_LIMIT + 1, 0))},
            "413",
            "upload too large",
        ),
        (
            "application/json",
            b'{"image": "' + b"A" * 100_000 + b'"}',
            "413",
            "request body too large",
        ),
        ("text/plain", json.dumps(unit).encode(), "415", "unsupported Content-Type"),
        (
            "application/json",
            {**unit, "image": _b64(_image("GIF", 9, 9, 0))},
            "415",
            "image format GIF",
        ),
        ("application/json", {"picture": png}, "422", "JSON body must be"),
        ("application/json", {"image": 7}, "422", '"image" must be'),
    ]


UNIT_422 = [
    ({"layer": "no-such-layer", "channel": 0}, "layer 'no-such-layer' not found"),
    ({"channel": 0}, "layer: Field required"),
    ({"layer": "conv1", "channel": 32}, "channel=32 is outside"),
    ({"layer": "conv1", "channel": -1}, "channel=-1 is outside"),
    ({"layer": "conv1", "channel": 0, "row": 26}, "row=26 is outside"),
    ({"layer": "conv1", "channel": 0, "col": -3}, "col=-3 is outside"),
    ({"layer": "conv1", "channel": "5"}, "channel: Input should be a valid integer"),
    ({"layer": "conv1", "channel": 1.0}, "channel: Input should be a valid integer"),
    ({"layer": "fc2", "channel": 10}, "channel=10 is outside"),
]


@pytest.mark.parametrize("path", EXPLAIN_POSTS)
def test_explain_statuses_and_details(client, spec, seen, layers, path):
    """Each documented error, once on purpose, with its one-line detail."""
    for media_type, body, want, detail in _explain_cases(layers):
        status, response = _post_explain(client, spec, seen, path, body, media_type)
        assert status == want, (media_type, str(body)[:80], response.text)
        assert detail in response.json()["detail"] if detail else "detail" not in response.json()
    if path == "/explain/unit":
        png = _b64(_digit_png())
        for fields, detail in UNIT_422:
            status, response = _post_explain(client, spec, seen, path, {"image": png, **fields})
            assert status == "422" and detail in response.json()["detail"], response.text


def test_explain_needs_torch_modules(torchless, spec, seen):
    """A model served without torch modules answers every explain operation with a 409."""
    for path, ops in spec["paths"].items():
        if not path.startswith("/explain"):
            continue
        for method in ops:
            url = path.format(layer="conv1")
            if method == "get":
                response = torchless.get(url)
            else:
                body = {"image": _b64(_digit_png()), "layer": "conv1", "channel": 0}
                response = torchless.post(url, json=body)
            status = check(spec, method, path, response)
            _record(seen, method, path, status)
            want = "200" if path == "/explain/samples" else "409"
            assert status == want, (method, path, response.text)
            if want == "409":
                assert "needs a PyTorch checkpoint" in response.json()["detail"]
    status = check(spec, "get", "/model", torchless.get("/model"))  # the rest still works
    assert status == "200"


def test_a_slow_onnx_model_is_stopped_with_503(spec, seen, tmp_path):
    """--inference-timeout: a graph still running after it is stopped at its next node."""
    from fastapi.testclient import TestClient

    from _slow_onnx import write_slow_onnx
    from cnnlab.run import load
    from cnnlab.serve.app import ServeSettings, create_app

    slow = load(write_slow_onnx(tmp_path / "slow.onnx", convs=120))
    app = create_app(slow, ServeSettings(inference_timeout=0.002))
    with TestClient(app) as c:
        response = c.post("/predict", files={"file": ("d.png", _digit_png(), "image/png")})
        status = check(spec, "post", "/predict", response)
        _record(seen, "post", "/predict", status)
        assert status == "503", response.text
        assert response.json()["detail"] == "the ONNX model ran longer than 0.002 s and was stopped"
        assert c.get("/healthz").status_code == 200  # the server goes on


def test_every_documented_status_was_answered(spec, seen):
    """Runs after the generated requests: the document promises no status the server never
    gives (and 400, 404, 409, 413, 415, 422 and 503 were all produced)."""
    if not seen:
        pytest.skip("run with the generated-request tests")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert set(op["responses"]) == seen.get((method, path)), (method, path)
