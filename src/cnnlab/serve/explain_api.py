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
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from cnnlab.errors import CnnlabError, ImageError
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
    image: Array = Field(description="the preprocessed input in [0, 1], (C, H, W)")
    layers: list[LayerOut]
    ms: float = Field(description="server time: decode, preprocess, forward pass, encoding")


class ImageRequest(BaseModel):
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


def _body_doc(model: type[BaseModel]) -> dict:
    schema = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": schema}}


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
                    cache["explainer"] = Explainer.from_predictor(app.state.service.predictor)
                except CnnlabError as exc:
                    raise HTTPException(409, str(exc)) from None
            return cache["explainer"]

    async def read(request: Request, model: type[BaseModel]) -> tuple[Any, np.ndarray]:
        from cnnlab.serve.app import _from_json, _read_limited

        body = await _read_limited(request, app.state.settings.max_body_bytes())
        data = _from_json(body)  # 400/422 for bad JSON or a missing/invalid image
        try:
            req = model.model_validate(json.loads(body))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise HTTPException(422, f"{where}: {err['msg']}") from None
        try:
            image = await run_in_threadpool(bounded, app.state.service.prepare_bytes, data)
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

    @router.get("/explain/model")
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

    @router.post("/explain/unit", response_model=UnitResponse, openapi_extra=_body_doc(UnitRequest))
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

    @router.get("/explain/kernels/{layer}")
    def kernels(layer: str) -> dict[str, Any]:
        """A conv layer's weights (out, in, kh, kw) and bias, base64 float32."""
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

    @router.get("/explain/samples")
    def samples() -> dict[str, Any]:
        """A few test images of the model's dataset as PNGs (empty when the data is not here)."""
        if "samples" not in cache:
            cache["samples"] = test_samples(app.state.service.predictor)
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
        "image": {"shape": list(acts.image.shape), "data": encode(acts.image)},
        "layers": layers,
        "ms": round((time.perf_counter() - start) * 1000.0, 3),
    }


def test_samples(predictor: Any, n: int = SAMPLES) -> list[dict[str, Any]]:
    """Up to ``n`` test images (one per class first) as base64 PNGs with their labels."""
    from PIL import Image

    from cnnlab.data import load_image_folder
    from cnnlab.engine.data_setup import is_folder_dataset, load_split

    backend = predictor.backend
    payload = getattr(getattr(backend, "loaded", None), "payload", None) or {}
    data_dir = (payload.get("config") or {}).get("data_dir")
    c, h, w = predictor.input_shape
    try:
        if not backend.dataset:
            return []
        if is_folder_dataset(backend.dataset):  # in the model's own size and colours
            ds = load_image_folder(backend.dataset, input_size=(h, w), channels=c)
        else:
            ds = load_split(backend.dataset, "test", data_dir=data_dir, download=False)
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
                "class_name": predictor.classes[labels[i]],
                "png": base64.b64encode(buf.getvalue()).decode("ascii"),
            }
        )
    return out
