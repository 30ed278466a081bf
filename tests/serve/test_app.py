"""POST /predict, /healthz, /model, / and /docs through FastAPI's TestClient, errors included."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnlab.predict import preprocess


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def drawn_one() -> Image.Image:
    """A '1' as a person draws it on the page: a thick white stroke on black."""
    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line((140, 40, 140, 240), fill=255, width=22)
    return img


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def post_file(client, data: bytes, name: str = "digit.png", kind: str = "image/png"):
    return client.post("/predict", files={"file": (name, data, kind)})


# ---------------------------------------------------------------- happy paths


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_model_describes_the_run(client, predictor):
    info = client.get("/model").json()
    assert info["model"] == "tutorial_cnn"
    assert info["dataset"] == "mnist"
    assert info["classes"] == [str(i) for i in range(10)]
    assert info["input_shape"] == [1, 28, 28]
    assert info["style"] == "mnist"
    assert info["params"] == sum(p.numel() for p in predictor.model.parameters())
    assert 0.9 < info["accuracy"] <= 1.0 and info["accuracy_split"] in ("validation", "test")
    assert "conv1" in info["summary"]


def test_predict_multipart_matches_cnnlab_predict(client, predictor, mnist_pngs):
    right = 0
    for data, label in mnist_pngs:
        response = post_file(client, data)
        assert response.status_code == 200, response.text
        body = response.json()
        expected = predictor.predict([data])[0]
        assert body["label"] == expected.label
        assert body["class_name"] == expected.class_name
        np.testing.assert_allclose(body["probs"], expected.probs, atol=2e-6)
        right += body["label"] == label
    assert right >= 18  # a ~97% model on 20 real test digits


def test_predict_response_shape(client):
    body = post_file(client, encode(drawn_one())).json()
    assert set(body) == {
        "label", "class_name", "probability", "probs", "preprocessed", "ms", "features"
    }  # fmt: skip
    assert body["class_name"] == "1"
    assert len(body["probs"]) == 10 and abs(sum(body["probs"]) - 1) < 1e-4
    assert body["probability"] == pytest.approx(max(body["probs"]), abs=1e-6)
    assert body["ms"] > 0
    seen = Image.open(io.BytesIO(base64.b64decode(body["preprocessed"])))
    assert seen.size == (28, 28) and seen.mode == "L"
    expected = np.round(preprocess(drawn_one(), "mnist", 28) * 255)
    assert np.abs(np.asarray(seen, dtype=np.float64) - expected).max() <= 1
    features = body["features"]
    assert features["layer"] == "conv1" and features["shape"] == [32, 26, 26]
    assert (features["rows"], features["cols"]) == (4, 8)
    grid = Image.open(io.BytesIO(base64.b64decode(features["grid"])))
    assert grid.size == (8 * 27 - 1, 4 * 27 - 1)  # 26 px maps, 1 px apart


@pytest.mark.parametrize("prefix", ["", "data:image/png;base64,"])
def test_predict_json_base64_and_data_url(client, prefix):
    data = encode(drawn_one())
    response = client.post("/predict", json={"image": prefix + b64(data)})
    assert response.status_code == 200, response.text
    assert response.json()["class_name"] == "1"


@pytest.mark.parametrize(("fmt", "kind"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_predict_jpeg_and_webp(client, fmt, kind):
    response = post_file(client, encode(drawn_one().convert("RGB"), fmt), f"x.{fmt}", kind)
    assert response.status_code == 200, response.text
    assert response.json()["class_name"] == "1"


def test_black_on_white_photo_is_inverted(client):
    photo = Image.eval(drawn_one(), lambda v: 255 - v).convert("RGB")
    assert post_file(client, encode(photo)).json()["class_name"] == "1"


def test_raw_image_body(client):
    response = client.post(
        "/predict", content=encode(drawn_one()), headers={"content-type": "image/png"}
    )
    assert response.status_code == 200 and response.json()["class_name"] == "1"


def test_client_filename_is_never_used(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    response = post_file(client, encode(drawn_one()), name="../../../tmp/evil.png")
    assert response.status_code == 200
    assert list(tmp_path.iterdir()) == []
    assert "evil" not in response.text


@pytest.mark.parametrize(
    "image",
    [Image.new("L", (280, 280), 0), Image.new("L", (1, 1), 255), Image.new("L", (1, 5000), 128)],
    ids=["black canvas", "1x1 white", "1x5000 gray"],
)
def test_blank_canvas_is_refused_not_guessed(client, image):
    """Nothing drawn: 422 with one line, not a class picked from noise."""
    response = post_file(client, encode(image))
    assert response.status_code == 422
    assert response.json()["detail"] == "no digit found: the image is blank"


def test_concurrent_requests_are_independent(client, mnist_pngs):
    results: dict[int, int] = {}

    def worker(i: int) -> None:
        data, _ = mnist_pngs[i]
        results[i] = post_file(client, data).json()["label"]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    serial = {i: post_file(client, mnist_pngs[i][0]).json()["label"] for i in range(8)}
    assert results == serial


def test_inference_runs_off_the_event_loop(client):
    """While every inference slot is taken, /healthz still answers (the loop is not blocked)."""
    service = client.app.state.service
    slots = client.app.state.settings.max_concurrent
    for _ in range(slots):
        service._slots.acquire()
    waiting = threading.Thread(target=post_file, args=(client, encode(drawn_one())))
    try:
        waiting.start()
        waiting.join(0.3)
        assert waiting.is_alive()  # parked in a worker thread, waiting for a slot
        answered = []
        probe = threading.Thread(target=lambda: answered.append(client.get("/healthz")))
        probe.start()
        probe.join(10)
        assert answered and answered[0].status_code == 200
    finally:
        for _ in range(slots):
            service._slots.release()
        waiting.join(30)


# ---------------------------------------------------------------- page, static files, docs


def test_index_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    for needle in ('<canvas id="pad"', 'id="predict"', 'id="clear"', 'id="bars"', 'id="upload"'):
        assert needle in html
    for asset in ("/static/app.js", "/static/app.css"):
        response = client.get(asset)
        assert response.status_code == 200
        assert "http://" not in response.text and "https://" not in response.text  # no CDN
    assert "https://" not in html and "http://" not in html


def test_openapi_documents_predict(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()  # the docs page works offline
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/swagger/{asset}").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert {"/healthz", "/model"} <= set(spec["paths"])


# ---------------------------------------------------------------- every error case


def huge_png(pixels: int = 4_000_001) -> bytes:
    side = int(np.ceil(np.sqrt(pixels)))
    return encode(Image.new("L", (side, side)))


BAD = {
    # name: (request kwargs, status, words expected in the message)
    "bad base64": ({"json": {"image": "not*base64!"}}, 400, "base64"),
    "bad data url": ({"json": {"image": "data:image/png,abc"}}, 400, "data URL"),
    "empty base64": ({"json": {"image": "   "}}, 400, "empty"),
    "base64 of text": ({"json": {"image": b64(b"hello world")}}, 400, "not a readable image"),
    "text file as .png": (
        {"files": {"file": ("notes.png", b"just some text\n", "image/png")}}, 400, "not a readable"
    ),
    "empty file": ({"files": {"file": ("e.png", b"", "image/png")}}, 400, "empty"),
    "truncated png": (
        {"files": {"file": ("t.png", encode(Image.new("L", (64, 64), 9))[:60], "image/png")}},
        400,
        "image",
    ),
    "huge pixel count": (
        {"files": {"file": ("h.png", huge_png(), "image/png")}}, 400, "too large"
    ),
    "gif": ({"files": {"file": ("a.gif", encode(Image.new("L", (9, 9)), "GIF"))}}, 415, "GIF"),
    "wrong json": (
        {"content": b"{image: nope", "headers": {"content-type": "application/json"}}, 400, "JSON"
    ),
    "json not an object": ({"json": ["image"]}, 422, "image"),
    "deeply nested json": (
        {"content": b"[" * 200_000, "headers": {"content-type": "application/json"}}, 400, "JSON"
    ),
    "json with a huge number": (
        {"content": b'{"image": 1' + b"0" * 5000 + b"}",
         "headers": {"content-type": "application/json"}}, 400, "JSON"
    ),
    "json not utf-8": (
        {"content": b'{"image": "\xff\xfe"}', "headers": {"content-type": "application/json"}},
        400,
        "JSON",
    ),
    "missing json field": ({"json": {"picture": "abc"}}, 422, '"image" field'),
    "image not a string": ({"json": {"image": 12}}, 422, "base64 string"),
    "missing multipart field": (
        {"files": {"photo": ("a.png", b"\x89PNG", "image/png")}}, 422, "'file'"
    ),
    "no content type": ({"content": b"abc"}, 415, "Content-Type"),
    "empty raw body": ({"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty"),
    "bad content-length": (
        {"content": b"{}", "headers": {"content-type": "application/json",
                                       "content-length": "x"}}, 400, "Content-Length"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_4xx_with_a_message(client, case):
    kwargs, status, words = BAD[case]
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    assert words.lower() in detail.lower()


def test_oversize_by_content_length_is_413(client, settings):
    data = b"\x89PNG\r\n\x1a\n" + bytes(settings.max_body_bytes())
    response = post_file(client, data)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_oversize_streamed_without_content_length_is_413(client, settings):
    chunk = bytes(64 * 1024)
    count = settings.max_body_bytes() // len(chunk) + 2

    def stream():  # a generator body goes out chunked: no Content-Length to trust
        for _ in range(count):
            yield chunk

    response = client.post("/predict", content=stream(), headers={"content-type": "image/png"})
    assert response.status_code == 413


def test_oversize_image_inside_json_is_413(client, settings):
    # base64 makes the body 4/3 bigger; the decoded image is checked against the limit too
    data = b"\x89PNG\r\n\x1a\n" + bytes(settings.max_upload_bytes)
    response = client.post("/predict", json={"image": b64(data)})
    assert response.status_code == 413


def test_server_survives_bad_input(client):
    for kwargs, _, _ in BAD.values():
        client.post("/predict", **kwargs)
    assert client.get("/healthz").status_code == 200
    assert post_file(client, encode(drawn_one())).json()["class_name"] == "1"


def test_fashion_model_takes_a_photo_upload():
    """A Fashion-MNIST model: /model says style 'fashion' (the page leads with the upload)."""
    from fastapi.testclient import TestClient

    from cnnlab.data import Normalizer
    from cnnlab.models import create_model
    from cnnlab.run import Run
    from cnnlab.serve.app import create_app

    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")  # fmt: skip
    model = create_model("tutorial_cnn").eval()
    fashion = Run(model, classes, (1, 28, 28), Normalizer("unit"), dataset="fashion-mnist")
    with TestClient(create_app(fashion)) as c:
        info = c.get("/model").json()
        assert info["style"] == "fashion" and info["classes"] == list(classes)
        photo = Image.new("RGB", (120, 90), (250, 250, 245))
        ImageDraw.Draw(photo).rectangle((40, 10, 80, 80), fill=(30, 30, 90))
        jpeg = encode(photo, "JPEG")
        body = post_file(c, jpeg, "trousers.jpg", "image/jpeg").json()
    assert body["class_name"] in classes
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["preprocessed"]))))
    expected = preprocess(Image.open(io.BytesIO(jpeg)), "fashion", 28) * 255
    assert np.abs(seen - expected).max() <= 1  # light background inverted, padded, resized


def test_far_oversize_is_refused_from_the_header(client, settings, monkeypatch):
    import cnnlab.serve.app as app_module

    monkeypatch.setattr(app_module, "DRAIN_BYTES", 0)  # no draining: refuse on Content-Length
    data = b"\x89PNG\r\n\x1a\n" + bytes(settings.max_body_bytes())
    response = post_file(client, data)
    assert response.status_code == 413
    assert "request body too large" in response.json()["detail"]


def dotted(image: Image.Image) -> Image.Image:
    """``image`` with one black pixel in its middle (not blank any more)."""
    image.putpixel((image.width // 2, image.height // 2), 0)
    return image


def odd_images() -> dict[str, bytes]:
    """Unusual but valid images: every one must get a 200, never a 5xx."""
    stroke = drawn_one()
    sixteen = Image.fromarray(np.asarray(stroke, dtype=np.uint16) * 257)  # mode I;16
    rgba = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line((140, 40, 140, 240), fill=(0, 0, 0, 255), width=22)
    palette = stroke.convert("P")
    # the white stroke's index is transparent: on white it still stands out from the black page
    palette.info["transparency"] = int(palette.getpixel((140, 140)))
    frames = [stroke.convert("RGB"), Image.new("RGB", (280, 280), "white")]
    animated = io.BytesIO()
    frames[0].save(animated, format="WEBP", save_all=True, append_images=frames[1:])
    return {
        "cmyk jpeg": encode(stroke.convert("CMYK"), "JPEG"),
        "16-bit png": encode(sixteen),
        "transparent rgba png": encode(rgba),
        "la png": encode(stroke.convert("LA")),
        "palette png with transparency": encode(palette),
        "1x5000 png with a dot": encode(dotted(Image.new("L", (1, 5000), 128))),
        "animated webp": animated.getvalue(),
    }


@pytest.mark.parametrize("name", list(odd_images()))
def test_odd_but_valid_images_are_answered(client, name):
    response = post_file(client, odd_images()[name])
    assert response.status_code == 200, response.text
    assert len(response.json()["probs"]) == 10
