"""The server keeps the contract of its own /openapi.json.

Generated requests (hypothesis: valid images in every documented request body, and broken
bodies, types and sizes) go to every documented operation; each answer's status must be listed
for that operation and its JSON body must validate against the documented schema. A request the
server accepts must use a documented request body, and every documented status must be
reachable. The app serves an untrained tutorial_cnn (the contract does not depend on accuracy).
"""

from __future__ import annotations

import base64
import io
import json
import random

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
    from cnnlab.predict import Predictor
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
    return create_app(Predictor.load(path), limits)


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
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


def check(spec: dict, method: str, path: str, response, request_type: str | None = None) -> str:
    """Assert ``response`` matches the documented operation; return its status as a string."""
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


def test_get_operations_match(client, spec, seen):
    for path, ops in spec["paths"].items():
        if "get" in ops:
            status = check(spec, "get", path, client.get(path))
            _record(seen, "get", path, status)
            assert status == "200"


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
        assert status == "200", response.text
        assert len(response.json()["probs"]) == 10


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


def test_every_documented_status_was_answered(spec, seen):
    """Runs after the generated requests: the document promises no status the server never
    gives (and 400, 413, 415 and 422 were all produced)."""
    if not seen:
        pytest.skip("run with the generated-request tests")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert set(op["responses"]) == seen.get((method, path)), (method, path)
