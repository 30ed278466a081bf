"""The FastAPI app: ``create_app(run, settings)``.

Endpoints: ``POST /predict`` (multipart field ``file``, a JSON body ``{"image": "<base64>"}``
or a raw ``image/*`` body), ``GET /healthz``, ``GET /model``, ``GET /`` (the drawing page) and
FastAPI's ``/docs``. Every bad input is a 4xx with ``{"detail": "<one line>"}``; the request body
is read with a byte budget (``Content-Length`` and the streamed size) before anything is decoded,
and inference runs in Starlette's thread pool behind a semaphore so a burst of large photos cannot
exhaust memory or block the event loop.

>>> import cnnlab  # doctest: +SKIP
>>> app = create_app(cnnlab.load("runs/tutorial_cnn-mnist"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from cnnlab.backends import InferenceTimeout
from cnnlab.errors import CnnlabError, ImageError
from cnnlab.images import BlankImageError
from cnnlab.serve.codec import decode_base64_image
from cnnlab.serve.guard import ABORTED
from cnnlab.serve.service import InferenceService, UnsupportedFormat

log = logging.getLogger("cnnlab.serve")
MB = 1024 * 1024
# How much of an over-limit body is read and discarded so the client sees the 413.
DRAIN_BYTES = 16 * MB


@dataclass(frozen=True)
class ServeSettings:
    """Server limits; the CLI flags of ``cnnlab serve`` map onto these fields."""

    max_upload_bytes: int = 5 * MB  # largest encoded image accepted (bigger -> 413)
    max_pixels: int = 20_000_000  # largest width x height decoded (bigger -> 400)
    max_concurrent: int = 2  # images preprocessed/inferred at once (bounds memory and CPU)
    torch_threads: int = 1  # intra-op threads (set process-wide by `cnnlab serve`, not here)
    feature_maps: int = 32  # first-conv maps drawn in the response's grid
    inference_timeout: float = 10.0  # seconds an ONNX model may run per request (else 503)

    def max_body_bytes(self) -> int:
        """Body budget: base64 in JSON is 4/3 of the image, plus room for multipart headers."""
        return self.max_upload_bytes * 4 // 3 + 64 * 1024


class Features(BaseModel):
    layer: str = Field(description="module name of the first convolution")
    shape: list[int] = Field(description="(channels, height, width) of its output")
    grid: str = Field(description="the maps as one base64 gray PNG grid, each min-max scaled")
    rows: int
    cols: int


class PredictResponse(BaseModel):
    label: int = Field(description="index of the most probable class")
    class_name: str
    probability: float = Field(description="softmax probability of the label")
    probs: list[float] = Field(description="softmax probabilities, one per class")
    preprocessed: str = Field(description="base64 PNG of the image the network saw")
    ms: float = Field(description="server time for decode, preprocess and inference")
    features: Features | None = Field(description="first conv layer output (torch models)")


class ErrorDetail(BaseModel):
    detail: str = Field(description="what was wrong with the request, in one line")


class ModelInfo(BaseModel, extra="allow", protected_namespaces=()):
    model: str | None = Field(None, description="registered model name")
    model_args: dict[str, Any] = Field({}, description="create_model(**model_args) rebuilds it")
    dataset: str | None = None
    classes: list[str] = Field([], description="class names in logit order")
    style: str | None = Field(None, description="how uploads are preprocessed")
    input_shape: list[int] = Field([], description="(channels, height, width) of one input")
    backend: str | None = None
    accuracy: float | None = Field(None, description="test accuracy if known, else validation")
    accuracy_split: str | None = None
    params: int | None = None
    summary: str | None = Field(None, description="the model summary table (torch models)")


_IMAGE = {"schema": {"type": "string", "format": "binary"}}
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "one PNG, JPEG or WebP image: a multipart field `file`, base64 in JSON, "
        "or the raw bytes with their image Content-Type",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "description": "base64 PNG or data: URL"}
                    },
                    "required": ["image"],
                }
            },
            "image/png": _IMAGE,
            "image/jpeg": _IMAGE,
            "image/webp": _IMAGE,
        },
    }
}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorDetail, "description": description}


PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "The image cannot be read: not decodable, empty, over the pixel limit, invalid "
        "base64 or JSON, a malformed multipart body or an invalid Content-Length."
    ),
    413: _error("The body or the image is larger than the server's upload limit."),
    415: _error(
        "Unsupported Content-Type (use multipart/form-data, application/json or image/*), or "
        "a decodable image in a format other than PNG, JPEG or WebP."
    ),
    422: _error(
        "The body has the right type but not the field: no multipart `file`, no JSON "
        '`"image"`, or an `"image"` that is not a string.'
    ),
    503: _error("An ONNX model ran longer than `--inference-timeout` and was stopped."),
}


def create_app(run: Any, settings: ServeSettings | None = None) -> FastAPI:
    """Build the app around an already loaded run (loaded once, shared by requests).

    Args:
        run: a :class:`cnnlab.run.Run` (any format: checkpoint, safetensors, ONNX...).
        settings: limits; defaults to :class:`ServeSettings`.
    """
    settings = settings or ServeSettings()
    service = InferenceService(run, settings)
    app = FastAPI(
        title="cnnlab",
        version=_version(),
        description="Classify a drawn digit or an uploaded photo with a cnnlab model.",
        docs_url=None,  # served below from the packaged Swagger UI, not from a CDN
    )
    app.state.service = service
    app.state.settings = settings
    static = resources.files("cnnlab.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.url.path == "/" or request.url.path.startswith("/static"):
            # The page loads nothing from elsewhere; say so to the browser.
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'"
            )
        return response

    from cnnlab.serve.explain_api import explain_router

    app.include_router(explain_router(app))  # /explain page and its JSON API

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        # Swagger UI 5 (npm swagger-ui-dist, Apache-2.0) ships in static/swagger/: works offline.
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title="cnnlab API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the model is loaded and the server answers."""
        return {"status": "ok"}

    @app.get("/model", response_model=ModelInfo)
    def model_info() -> dict[str, Any]:
        """What is being served: architecture summary, dataset, classes, accuracy if known."""
        return service.info()

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=PREDICT_ERRORS,
        openapi_extra=_BODY_DOC,
    )
    async def predict(request: Request) -> dict[str, Any]:
        """Classify one PNG, JPEG or WebP image: multipart ``file``, JSON ``{"image": b64}`` or
        the raw bytes as ``image/png``, ``image/jpeg`` or ``image/webp``."""
        body = await _read_limited(request, settings.max_body_bytes())
        data = await _image_bytes(request, body)
        if len(data) > settings.max_upload_bytes:
            raise HTTPException(413, _too_large(len(data), settings.max_upload_bytes))
        try:
            return await run_in_threadpool(service.predict_bytes, data)
        except UnsupportedFormat as exc:
            raise HTTPException(415, str(exc)) from None
        except BlankImageError as exc:  # a valid image with nothing on it: 422, not a guess
            raise HTTPException(422, str(exc)) from None
        except ImageError as exc:
            raise HTTPException(400, str(exc)) from None
        except InferenceTimeout as exc:  # a slow ONNX graph: stopped, the server goes on
            raise HTTPException(503, str(exc)) from None
        except CnnlabError as exc:  # the model's fault (non-finite scores): one line, no trace
            raise HTTPException(500, str(exc)) from None

    return app


def _version() -> str:
    from cnnlab import __version__

    return __version__


def _too_large(size: int, limit: int) -> str:
    return f"upload too large: {size:,} bytes (limit {limit:,} bytes)"


def _body_too_large(size: int, limit: int) -> str:
    return f"request body too large: over {limit:,} bytes (got {size:,}); shrink the image"


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) once the declared or streamed size passes ``limit``.

    An over-limit body is still read and thrown away up to :data:`DRAIN_BYTES` more, so the
    client gets the 413 instead of a reset connection; only bigger bodies are cut off.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise HTTPException(400, f"invalid Content-Length header: {declared[:40]!r}")
        if int(declared) > limit + DRAIN_BYTES:
            raise HTTPException(413, _body_too_large(int(declared), limit))
    chunks, total = [], 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:  # chunked uploads have no Content-Length: count what arrives
                chunks.clear()
                if total > limit + DRAIN_BYTES:
                    break
                continue
            chunks.append(chunk)
    except ClientDisconnect:  # one log line, not a traceback; nobody is left to answer
        if not request.scope.get(ABORTED):  # the connection guard has logged its own abort
            client = request.client
            who = f"{client.host}:{client.port}" if client else "client"
            log.warning("%s: disconnected after %s of %s body bytes", who, f"{total:,}",
                        declared or "?")  # fmt: skip
        raise HTTPException(400, "the client disconnected before its request arrived") from None
    if total > limit:
        raise HTTPException(413, _body_too_large(total, limit))
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _image_bytes(request: Request, body: bytes) -> bytes:
    """Pull the encoded image out of a multipart, JSON or raw image body."""
    kind = _media_type(request)
    if kind == "multipart/form-data":
        return await _from_multipart(request, body)
    if kind == "application/json" or kind.endswith("+json"):
        return _from_json(body)
    if kind.startswith("image/"):
        if not body:
            raise HTTPException(400, "empty request body: no image")
        return body
    raise HTTPException(
        415,
        f"unsupported Content-Type {kind or '(none)'!r}: send multipart/form-data with a "
        "'file' field or application/json with an 'image' field",
    )


async def _from_multipart(request: Request, body: bytes) -> bytes:
    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except HTTPException as exc:
        raise HTTPException(400, f"malformed multipart body: {exc.detail}") from None
    except Exception as exc:  # python-multipart's parse errors have no common base
        raise HTTPException(400, f"malformed multipart body: {exc}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "missing multipart field 'file' (an image file)")
    # The client's filename is never used: the bytes are decoded in memory only.
    data = await upload.read()
    await form.close()
    if not data:
        raise HTTPException(400, "empty file: the 'file' field holds no data")
    return data


def _from_json(body: bytes) -> bytes:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad syntax or encoding, absurd nesting/numbers
        raise HTTPException(400, f"invalid JSON body: {str(exc)[:200]}") from None
    if not isinstance(doc, dict) or "image" not in doc:
        raise HTTPException(422, 'JSON body must be an object with an "image" field')
    if not isinstance(doc["image"], str):
        kind = type(doc["image"]).__name__
        raise HTTPException(422, f'"image" must be a base64 string, got {kind}')
    try:
        return decode_base64_image(doc["image"])
    except ImageError as exc:
        raise HTTPException(400, str(exc)) from None
