"""Export a trained model to ONNX, TorchScript or safetensors + a JSON manifest, checked.

Every export is written to a temporary file next to the target, run back by the runtime that
will use it (ONNX Runtime, ``torch.jit.load``, a model rebuilt from the manifest) and compared
with the PyTorch model on real test images of the model's dataset. Only when the largest
absolute logit difference is below :data:`TOLERANCE` is the file renamed into place; otherwise a
:class:`~cnnlab.errors.CnnlabError` reports the difference and nothing is left behind.

The exported files describe themselves: the ONNX ``metadata_props``, the TorchScript extra file
``cnnlab.json`` and the safetensors manifest all carry the same manifest (model name and
arguments, input shape, normaliser, class names, dataset, preprocessing style).

>>> result = export_model("runs/tutorial_cnn-mnist", "onnx", "model.onnx")  # doctest: +SKIP
>>> result.max_abs_diff < TOLERANCE  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError

FORMATS = ("onnx", "torchscript", "safetensors")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
OPSET = 18  # ONNX opset written (the torch.export-based exporter's native opset)
INPUT_NAME = "input"  # (batch, C, H, W) float32, already normalised
OUTPUT_NAME = "logits"  # (batch, num_classes) float32
TOLERANCE = 1e-4  # largest |logit difference| accepted by the round-trip check
CHECK_IMAGES = 256  # test images used by the round-trip check
MANIFEST_FORMAT = "cnnlab-manifest"
MANIFEST_VERSION = 1


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how well the round trip matched."""

    format: str
    path: Path
    files: list[Path]
    max_abs_diff: float
    images: int
    top1_agreement: float
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": str(self.path),
            "files": [str(f) for f in self.files],
            "max_abs_diff": self.max_abs_diff,
            "images": self.images,
            "top1_agreement": self.top1_agreement,
            "seconds": round(self.seconds, 3),
            **self.details,
        }


def make_manifest(run: Any) -> dict[str, Any]:
    """The self-description every export carries (JSON-serialisable, no pickles)."""
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        **run.description(),
        "style": run.style,
    }


def check_batch(run: Any, count: int = CHECK_IMAGES, data_dir: str | None = None):
    """The first ``count`` test images of the model's dataset, normalised: (N, C, H, W)."""
    from cnnlab.engine.data_setup import load_split

    if not run.dataset:
        raise CnnlabError(f"{run.path}: the model names no dataset to check the export on")
    c, h, w = run.input_shape
    try:
        test = load_split(run.dataset, "test", run.data_dir(data_dir), download=False,
                          image_size=(h, w), channels=c)  # fmt: skip
    except CnnlabError as exc:
        raise CnnlabError(f"cannot load test images to check the export: {exc}") from None
    images = test.images[:count]
    if tuple(images.shape[1:]) != tuple(run.input_shape):
        raise CnnlabError(
            f"test images of {run.dataset} are {tuple(images.shape[1:])}, "
            f"the model expects {tuple(run.input_shape)}"
        )
    return run.normalizer(images).contiguous()


def _example(x: torch.Tensor) -> torch.Tensor:
    """A batch of 2 to trace with (a batch of 1 would let the exporter fix the batch size)."""
    return x[:2] if len(x) >= 2 else x.repeat(2, 1, 1, 1)


def _reference(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return model(x).float().numpy()


def _compare(name: str, ref: np.ndarray, got: np.ndarray) -> tuple[float, float]:
    """(max |diff|, top-1 agreement); CnnlabError when the difference reaches TOLERANCE."""
    got = np.asarray(got, dtype=np.float32)
    if got.shape != ref.shape:
        raise CnnlabError(f"{name} round trip: output shape {got.shape}, expected {ref.shape}")
    diff = float(np.max(np.abs(got - ref)))
    if not np.isfinite(diff) or diff >= TOLERANCE:
        raise CnnlabError(
            f"{name} round trip failed: max abs logit difference {diff:.3g} on {len(ref)} test "
            f"images (must be < {TOLERANCE:g}); nothing was written"
        )
    return diff, float(np.mean(got.argmax(1) == ref.argmax(1)))


@contextlib.contextmanager
def _staged(path: Path):
    """Yield a temp path next to ``path``; rename it into place only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def _quiet_torch():
    """Silence the exporters' deprecation chatter and progress logging (library never prints)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# -- ONNX ---------------------------------------------------------------------------------------
def _onnx_export(model: torch.nn.Module, example: torch.Tensor, path: Path, opset: int) -> str:
    """Write ``path`` with a dynamic batch axis; returns which exporter worked."""
    try:  # the torch.export-based exporter: the default and the supported path since 2.9
        with _quiet_torch():
            program = torch.onnx.export(
                model,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
                verbose=False,
            )
            program.save(str(path))
        return "dynamo"
    except Exception as exc:  # fall back to the legacy tracer, which still ships in 2.13
        first_error = exc
    try:
        with _quiet_torch():
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=min(opset, 17),
                dynamo=False,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        return "torchscript-tracer"
    except Exception as exc:
        raise CnnlabError(
            f"ONNX export failed: {str(first_error).splitlines()[0][:200]}; "
            f"legacy exporter: {str(exc).splitlines()[0][:200]}"
        ) from None


def _stamp_onnx(path: Path, manifest: dict[str, Any], exporter: str) -> int:
    """Put the manifest into the ONNX model's metadata_props; returns the opset in the file."""
    import onnx

    proto = onnx.load(str(path))
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    props = {
        "cnnlab_manifest": json.dumps(manifest),
        "classes": json.dumps(manifest["classes"]),
        "normalizer": json.dumps(manifest["normalizer"]),
        "model_args": json.dumps(manifest["model_args"]),
        "input_shape": json.dumps(manifest["input_shape"]),
        "style": manifest["style"],
        "dataset": manifest["dataset"],
        "opset": str(opset),
        "exporter": exporter,
    }
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"cnnlab {manifest['model_args'].get('name')} on {manifest['dataset']}"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return opset


def export_onnx(run: Any, path: Path, x: torch.Tensor, opset: int = OPSET) -> ExportResult:
    """ONNX with a dynamic batch axis, checked in ONNX Runtime against PyTorch on ``x``."""
    import onnxruntime as ort

    start = time.perf_counter()
    ref = _reference(run.model, x)
    manifest = make_manifest(run)
    with _staged(path) as tmp:
        exporter = _onnx_export(run.model, _example(x), tmp, opset)
        written_opset = _stamp_onnx(tmp, manifest, exporter)
        try:
            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
            single = session.run([OUTPUT_NAME], {INPUT_NAME: x[:1].numpy()})[0]
        except Exception as exc:  # onnxruntime's own error types
            first = str(exc).splitlines()[0][:200]
            raise CnnlabError(f"ONNX Runtime cannot run the exported model: {first}") from None
        diff, agree = _compare("ONNX", ref, got)
        _compare("ONNX (batch of 1)", ref[:1], single)
    details = {"opset": written_opset, "exporter": exporter, "input": INPUT_NAME}
    details["output"] = OUTPUT_NAME
    return ExportResult(
        "onnx", path, [path], diff, len(x), agree, time.perf_counter() - start, details
    )


# -- TorchScript --------------------------------------------------------------------------------
def export_torchscript(run: Any, path: Path, x: torch.Tensor) -> ExportResult:
    """``torch.jit.trace`` + save, rerun with ``torch.jit.load`` and compared on ``x``."""
    jit = getattr(torch, "jit", None)
    if jit is None or not hasattr(jit, "trace") or not hasattr(jit, "load"):
        raise CnnlabError(
            f"this PyTorch ({torch.__version__}) no longer supports TorchScript; "
            "use --format onnx (Netron and ONNX Runtime read it)"
        )
    start = time.perf_counter()
    ref = _reference(run.model, x)
    manifest = json.dumps(make_manifest(run))
    with _staged(path) as tmp:
        try:
            with _quiet_torch(), torch.no_grad():
                traced = jit.trace(run.model, _example(x))
                jit.save(traced, str(tmp), _extra_files={"cnnlab.json": manifest})
                rerun = jit.load(str(tmp), map_location="cpu")
        except (RuntimeError, AttributeError, NotImplementedError, TypeError) as exc:
            raise CnnlabError(
                f"TorchScript export is not supported for this model or PyTorch "
                f"{torch.__version__}: {str(exc).splitlines()[0][:200]}; use --format onnx"
            ) from None
        diff, agree = _compare("TorchScript", ref, _reference(rerun, x))
    return ExportResult(
        "torchscript", path, [path], diff, len(x), agree, time.perf_counter() - start,
        {"method": "trace"},
    )  # fmt: skip


# -- safetensors + manifest ---------------------------------------------------------------------
def manifest_path(weights: str | os.PathLike) -> Path:
    """``model.safetensors`` -> ``model.json`` (the manifest sits next to its weights)."""
    return Path(weights).with_suffix(".json")


def export_safetensors(run: Any, path: Path, x: torch.Tensor) -> ExportResult:
    """Weights as safetensors plus a JSON manifest; rebuilt from them and compared on ``x``."""
    from cnnlab.backends import load_manifest_model
    from cnnlab.engine.checkpoint import save_safetensors

    start = time.perf_counter()
    ref = _reference(run.model, x)
    manifest = make_manifest(run)
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    mpath = manifest_path(path)
    # The header also carries the checkpoint loader's per-key metadata, so the weights alone
    # still load with cnnlab.engine.checkpoint.load_checkpoint.
    with _staged(path) as tmp_weights, _staged(mpath) as tmp_manifest:
        save_safetensors(tmp_weights, state, manifest)
        manifest["weights"] = path.name
        manifest["weights_sha256"] = hashlib.sha256(tmp_weights.read_bytes()).hexdigest()
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        rebuilt, _ = load_manifest_model(tmp_manifest, weights=tmp_weights)
        diff, agree = _compare("safetensors", ref, _reference(rebuilt, x))
    return ExportResult(
        "safetensors", path, [path, mpath], diff, len(x), agree, time.perf_counter() - start,
        {"manifest": str(mpath)},
    )  # fmt: skip


# -- entry point --------------------------------------------------------------------------------
def format_for(path: str | os.PathLike) -> str:
    """The export format a file name asks for: ``.onnx``, ``.safetensors``, ``.pt`` (TorchScript).

    >>> format_for("model.onnx"), format_for("m.pt")
    ('onnx', 'torchscript')
    """
    suffix = Path(path).suffix.lower()
    by_suffix = {".onnx": "onnx", ".safetensors": "safetensors", ".pt": "torchscript"}
    if suffix not in by_suffix:
        raise CnnlabError(
            f"cannot tell the export format from {str(path)!r}: use .onnx, .pt (TorchScript) "
            "or .safetensors, or pass format="
        )
    return by_suffix[suffix]


def default_out(run: Any, fmt: str) -> Path:
    """``<run>/export/<model>.<ext>`` next to the run's checkpoints folder."""
    folder = run.run_dir or (Path(run.path).parent if run.path else Path("."))
    return Path(folder) / "export" / f"{run.name}{SUFFIXES[fmt]}"


def export_model(
    run: Any,
    fmt: str,
    out: str | os.PathLike | None = None,
    *,
    which: str = "best",
    check_images: int = CHECK_IMAGES,
    data_dir: str | None = None,
    opset: int = OPSET,
) -> ExportResult:
    """Export a run to ``fmt`` at ``out`` and check the round trip.

    Args:
        run: a :class:`cnnlab.run.Run`, or a run folder / checkpoint it is run from.
        fmt: ``onnx``, ``torchscript`` or ``safetensors``.
        out: target file (a folder gets ``<model>.<ext>`` inside); default ``<run>/export/``.
        which: which checkpoint of a run folder (``best`` or ``last``).
        check_images: how many test images the round trip compares.
        data_dir: where the dataset lives (default: the usual search order).
        opset: ONNX opset to request.
    """
    from cnnlab.run import as_run

    if fmt not in FORMATS:
        raise CnnlabError(f"unknown export format {fmt!r} (use {', '.join(FORMATS)})")
    if check_images < 1:
        raise CnnlabError(f"check_images={check_images} must be at least 1")
    run = as_run(run, which=which)
    if not isinstance(run.model, torch.nn.Module) or run.format == "torchscript":
        raise CnnlabError(f"{run.path}: a {run.format} model cannot be re-exported; "
                          "export the checkpoint it came from")  # fmt: skip
    run.model.eval()
    path = Path(out) if out is not None else default_out(run, fmt)
    if path.is_dir():
        path = path / f"{run.name}{SUFFIXES[fmt]}"
    x = check_batch(run, check_images, data_dir)
    if fmt == "onnx":
        return export_onnx(run, path, x, opset)
    if fmt == "torchscript":
        return export_torchscript(run, path, x)
    return export_safetensors(run, path, x)
