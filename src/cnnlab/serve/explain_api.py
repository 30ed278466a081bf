"""The explainer's routes: the page at ``/explain`` and the JSON API behind it.

``POST /explain/activations`` (every layer's output for one image), ``POST /explain/unit`` (one
unit's receptive field, effective receptive field and arithmetic), ``GET /explain/model`` (the
layers), ``GET /explain/kernels/{layer}`` and ``GET /explain/samples`` (test images). Arrays
travel as base64 little-endian float32 with their shape, so a full update for a small network
is a few hundred kilobytes and costs the server no per-number JSON encoding.

The model comes from the app's :class:`cnnlab.serve.service.InferenceService`
(``app.state.service``), built into an :class:`cnnlab.serve.explain.Explainer` on first use.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from importlib import resources
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from cnnlab.errors import CnnlabError, ImageError
from cnnlab.images import BlankImageError
from cnnlab.serve.app import _error, _from_json, _media_type, _read_limited, _too_large
from cnnlab.serve.explain import Explainer
from cnnlab.serve.explain import encode_floats as encode

SAMPLES = 10  # test images offered by GET /explain/samples (one per class when possible)
PAGE_CSP = "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'"


class Array(BaseModel):
    shape: list[int]
    data: str = Field(description="base64 of the values as little-endian float32, C order")


class LayerOut(BaseModel):
    name: str = Field(description="module name, as in the model summary")
    shape: list[int] = Field(description="output per sample: (C, H, W) or (N,)")
    max_abs: float = Field(description="largest |value| in the layer (the colour scale)")
    data: str = Field(description="base64 little-endian float32 values, C order")


class ActivationsResponse(BaseModel):
    label: int
    class_name: str
    probs: list[float]
    tta: bool = Field(description="probs average the image's logits with its mirror's")
    image: Array = Field(description="the preprocessed input in [0, 1], (C, H, W)")
    layers: list[LayerOut]
    ms: float = Field(description="server time: decode, preprocess, forward pass, encoding")


class ImageRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # "5" or 5.0 for an int is a 422, not a guess

    image: str = Field(description="base64 PNG/JPEG/WebP or a data: URL")


class UnitRequest(ImageRequest):
    layer: str = Field(description="layer name (GET /explain/model)")
    channel: int = Field(description="channel, or the unit's index in a flat layer")
    row: int = Field(0, description="row in a (C, H, W) layer")
    col: int = Field(0, description="column in a (C, H, W) layer")


class UnitResponse(BaseModel):
    layer: str
    kind: str
    category: str
    unit: list[int]
    value: float = Field(description="the unit's output for this image")
    receptive_field: list[int] = Field(description="theoretical receptive field (rows, cols)")
    box: list[int] = Field(description="its window on the input: top, bottom, left, right")
    box_clipped: list[int] = Field(description="the window clipped to the image")
    erf: Array = Field(description="effective RF: |d unit / d input| summed over channels")
    erf_max: float
    arithmetic: dict[str, Any] = Field(
        description="conv: patch, kernel, products, sum, bias, total; pool: window and winner "
        "or mean; dense: top weight x input terms; element-wise: input and output"
    )
    ms: float


class LayerDoc(BaseModel):
    name: str
    kind: str = Field(description="module class, e.g. Conv2d")
    category: str = Field(description="conv, activation, pool, norm, dense, reshape, dropout...")
    shape: list[int] = Field(description="output per sample: (C, H, W) or (N,)")
    receptive_field: list[int] = Field(description="on the input (rows, cols)")
    jump: list[int] | None = Field(description="input pixels between neighbouring units")
    start: list[float] | None = Field(description="input coordinate of unit (0, 0)'s centre")
    params: int


class ModelLayers(BaseModel):
    model: str | None
    dataset: str | None
    style: str | None
    classes: list[str]
    input_shape: list[int] = Field(description="(C, H, W) of one input")
    layers: list[LayerDoc] = Field(description="in forward order")


class KernelsResponse(BaseModel):
    layer: str
    shape: list[int] = Field(description="(out, in / groups, kh, kw)")
    data: str = Field(description="base64 little-endian float32 weights, C order")
    max_abs: float
    bias: list[float] | None


class Sample(BaseModel):
    label: int
    class_name: str
    png: str = Field(description="base64 PNG in the model's input size")


class SamplesResponse(BaseModel):
    samples: list[Sample] = Field(description="empty when the dataset is not on the server")


NO_TORCH = _error(
    "The served model is not a PyTorch checkpoint (an ONNX export, say): the explainer needs "
    "its torch modules."
)
IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "The image cannot be read: invalid JSON or base64, empty, not decodable, over the pixel "
        "limit, or an invalid Content-Length."
    ),
    409: NO_TORCH,
    413: _error("The body or the image is larger than the server's upload limit."),
    415: _error(
        "The Content-Type is not application/json, or the image is decodable but not PNG, "
        "JPEG or WebP."
    ),
    422: _error(
        'The JSON is not an object with a string "image", or a field is missing or has the '
        "wrong type."
    ),
}
UNIT_ERRORS: dict[int | str, dict[str, Any]] = {
    **IMAGE_ERRORS,
    422: _error(
        'The JSON is not an object with a string "image", a field is missing or has the wrong '
        "type, there is no such layer, or channel/row/col is outside the layer's output."
    ),
}
KERNEL_ERRORS: dict[int | str, dict[str, Any]] = {
    404: _error("No such layer, or the layer is not a convolution (it has no kernels)."),
    409: NO_TORCH,
}


def _body_doc(model: type[BaseModel]) -> dict:
    schema = {"application/json": {"schema": model.model_json_schema()}}
    description = "JSON only (Content-Type application/json); the image as base64 or a data: URL"
    return {"requestBody": {"required": True, "description": description, "content": schema}}


LAYER_PARAMETER = {
    "name": "layer",
    "in": "path",
    "required": True,
    "description": "a convolution's name (GET /explain/model)",
    "schema": {"type": "string"},
}


def explain_router(app: FastAPI) -> APIRouter:
    """The routes, bound to ``app.state.service`` and ``app.state.settings``."""
    router = APIRouter(tags=["explain"])
    static = resources.files("cnnlab.serve") / "static"
    lock = threading.Lock()
    cache: dict[str, Any] = {}
    # like POST /predict: at most max_concurrent images in flight, the rest wait their turn
    slots = threading.BoundedSemaphore(max(1, app.state.settings.max_concurrent))

    def bounded(fn, *args):
        with slots:
            return fn(*args)

    def explainer() -> Explainer:
        with lock:
            if "explainer" not in cache:
                try:
                    cache["explainer"] = Explainer.from_run(app.state.service.run)
                except CnnlabError as exc:
                    raise HTTPException(409, str(exc)) from None
            return cache["explainer"]

    async def read(request: Request, model: type[BaseModel]) -> tuple[Any, np.ndarray]:
        settings = app.state.settings
        body = await _read_limited(request, settings.max_body_bytes())
        kind = _media_type(request)
        if kind != "application/json":
            raise HTTPException(
                415, f"unsupported Content-Type {kind or '(none)'!r}: send application/json"
            )
        data = _from_json(body)  # 400/422 for bad JSON or a missing/invalid image
        if len(data) > settings.max_upload_bytes:  # as POST /predict
            raise HTTPException(413, _too_large(len(data), settings.max_upload_bytes))
        try:
            req = model.model_validate(json.loads(body))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise HTTPException(422, f"{where}: {err['msg']}") from None
        try:
            image = await run_in_threadpool(bounded, app.state.service.prepare_bytes, data)
        except BlankImageError:  # an empty canvas: the network sees no ink at all
            image = np.zeros(app.state.service.run.input_shape, dtype=np.float32)
        except ImageError as exc:
            raise HTTPException(400, str(exc)) from None
        except CnnlabError as exc:  # an accepted-looking file in a format we do not take
            raise HTTPException(415, str(exc)) from None
        return req, image

    @router.get("/explain", include_in_schema=False)
    def page() -> FileResponse:
        response = FileResponse(str(static / "explain.html"), media_type="text/html")
        response.headers["Content-Security-Policy"] = PAGE_CSP
        return response

    @router.get("/explain/model", response_model=ModelLayers, responses={409: NO_TORCH})
    def layers() -> dict[str, Any]:
        """The layers the explainer shows, in forward order, with shapes and receptive fields."""
        ex = explainer()
        info = app.state.service.info()
        return {
            "model": info.get("model"),
            "dataset": info.get("dataset"),
            "style": info.get("style"),
            "classes": list(ex.classes),
            "input_shape": list(ex.input_shape),
            "layers": [layer.to_dict() for layer in ex.layers],
        }

    @router.post(
        "/explain/activations",
        response_model=ActivationsResponse,
        responses=IMAGE_ERRORS,
        openapi_extra=_body_doc(ImageRequest),
    )
    async def activations(request: Request) -> Response:
        """Every layer's output for one image (JSON ``{"image": base64}``), in forward order."""
        start = time.perf_counter()
        _, image = await read(request, ImageRequest)
        ex = explainer()
        doc = await run_in_threadpool(bounded, activations_document, ex, image, start)
        # Returned as is: validating the response model again would cost more than the network
        return Response(json.dumps(doc), media_type="application/json")

    @router.post(
        "/explain/unit",
        response_model=UnitResponse,
        responses=UNIT_ERRORS,
        openapi_extra=_body_doc(UnitRequest),
    )
    async def unit(request: Request) -> dict[str, Any]:
        """One unit: receptive field, effective receptive field and how its value is computed."""
        start = time.perf_counter()
        req, image = await read(request, UnitRequest)
        ex = explainer()
        try:
            doc = await run_in_threadpool(
                bounded, ex.unit, image, req.layer, req.channel, req.row, req.col
            )
        except CnnlabError as exc:
            raise HTTPException(422, str(exc)) from None
        erf = doc.pop("erf")
        doc["erf"] = {"shape": list(erf.shape), "data": encode(erf)}
        doc["erf_max"] = float(erf.max())
        doc["ms"] = round((time.perf_counter() - start) * 1000.0, 3)
        return doc

    # ``layer`` is read from the path rather than declared, so the document lists no 422:
    # any string is a valid name to look up (a wrong one is a 404)
    @router.get(
        "/explain/kernels/{layer}",
        response_model=KernelsResponse,
        responses=KERNEL_ERRORS,
        openapi_extra={"parameters": [LAYER_PARAMETER]},
    )
    def kernels(request: Request) -> dict[str, Any]:
        """A conv layer's weights (out, in, kh, kw) and bias, base64 float32."""
        layer = request.path_params["layer"]
        try:
            weight, bias = explainer().kernels(layer)
        except CnnlabError as exc:
            raise HTTPException(404, str(exc)) from None
        return {
            "layer": layer,
            "shape": list(weight.shape),
            "data": encode(weight),
            "max_abs": float(np.abs(weight).max()),
            "bias": None if bias is None else bias.tolist(),
        }

    @router.get("/explain/samples", response_model=SamplesResponse)
    def samples() -> dict[str, Any]:
        """A few test images of the model's dataset as PNGs (empty when the data is not here)."""
        if "samples" not in cache:
            cache["samples"] = test_samples(app.state.service.run)
        return {"samples": cache["samples"]}

    return router


def activations_document(ex: Explainer, image: np.ndarray, start: float) -> dict[str, Any]:
    """The POST /explain/activations answer for one preprocessed (C, H, W) image."""
    acts = ex.activations(image)
    label = int(np.argmax(acts.probs))
    layers = []
    for layer in ex.layers:
        out = acts.outputs[layer.name]
        layers.append(
            {
                "name": layer.name,
                "shape": list(out.shape),
                "max_abs": float(np.abs(out).max()) if out.size else 0.0,
                "data": encode(out),
            }
        )
    return {
        "label": label,
        "class_name": ex.classes[label],
        "probs": [round(float(p), 6) for p in acts.probs],
        "tta": ex.tta,
        "image": {"shape": list(acts.image.shape), "data": encode(acts.image)},
        "layers": layers,
        "ms": round((time.perf_counter() - start) * 1000.0, 3),
    }


def test_samples(run: Any, n: int = SAMPLES) -> list[dict[str, Any]]:
    """Up to ``n`` test images (one per class first) as base64 PNGs with their labels."""
    from PIL import Image

    from cnnlab.data import load_image_folder
    from cnnlab.engine.data_setup import is_folder_dataset, load_split

    c, h, w = run.input_shape
    try:
        if not run.dataset:
            return []
        if is_folder_dataset(run.dataset):  # in the model's own size and colours
            ds = load_image_folder(run.dataset, input_size=(h, w), channels=c)
        else:
            ds = load_split(run.dataset, "test", data_dir=run.data_dir(), download=False)
    except (CnnlabError, OSError):  # no local copy of the data: the page offers none
        return []
    labels = ds.labels[:2000].tolist()
    chosen, seen = [], set()
    for i, label in enumerate(labels):
        if label not in seen:
            chosen.append(i)
            seen.add(label)
        if len(chosen) == n:
            break
    out = []
    for i in chosen:
        pixels = ds.images[i].numpy()  # (C, H, W) uint8
        img = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels, 0, -1))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out.append(
            {
                "label": int(labels[i]),
                "class_name": run.classes[labels[i]],
                "png": base64.b64encode(buf.getvalue()).decode("ascii"),
            }
        )
    return out
