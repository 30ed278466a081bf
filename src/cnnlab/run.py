"""The run object: a trained model and everything needed to use it.

A :class:`Run` holds the model, its class names, input shape (C, H, W), normaliser, training
config, history and metrics, and where it came from in which format. :func:`load` builds one
from a run folder, a ``.pt`` checkpoint, a ``.safetensors`` file (with its manifest), an
``.onnx`` file or a TorchScript export; ``cnnlab.fit`` returns the same object. Evaluate,
predict, the pictures, the report, export, serve and the CLI all take it.

>>> run = load("runs/tutorial_cnn-mnist")  # doctest: +SKIP
>>> run.predict("my_digit.png")  # doctest: +SKIP
Prediction('7', probability=0.998)
"""

from __future__ import annotations

import html
import json
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cnnlab.errors import CheckpointError, CnnlabError, ImageError
from cnnlab.predict import IMAGE_EXTENSIONS, Prediction, collect_images, preprocess_channels
from cnnlab.predict import style_for as _style_for

FORMATS = ("memory", "checkpoint", "safetensors", "onnx", "torchscript")
_HISTORY_COLUMNS = ("epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


class History(list):
    """The rows of ``metrics.csv`` (one dict per evaluation), with a short table as repr."""

    def _rows(self, last: int = 8) -> list[list[str]]:
        def cell(v: Any) -> str:
            return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

        return [[cell(r.get(c)) for c in _HISTORY_COLUMNS] for r in self[-last:]]

    def __repr__(self) -> str:
        if not self:
            return "History([])"
        lines = ["  ".join(f"{c:>14}" for c in _HISTORY_COLUMNS)]
        lines += ["  ".join(f"{v:>14}" for v in row) for row in self._rows()]
        more = f"({len(self) - 8} earlier rows not shown)\n" if len(self) > 8 else ""
        return more + "\n".join(lines)

    def _repr_html_(self) -> str:
        return _html_table(list(_HISTORY_COLUMNS), self._rows(12))


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


@dataclass(repr=False, eq=False)
class Run:
    """A trained model with its metadata; see the module docstring.

    ``model`` is a torch module in eval mode (for ONNX files: None, ``session`` runs it).
    ``logits(x)`` runs any format; every other method builds on it or on ``model``.
    """

    model: Any
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (C, H, W)
    normalizer: Any = None  # cnnlab.data.Normalizer (None: pixels in [0, 1] as they are)
    dataset: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    config: Any = None  # cnnlab.config.TrainConfig of training (None for exported files)
    history: History = field(default_factory=History)
    metrics: dict[str, Any] = field(default_factory=dict)  # of the best evaluation
    path: Path | None = None  # the file it was loaded from (the best checkpoint of a run)
    format: str = "memory"  # one of FORMATS
    run_dir: Path | None = None  # the run folder, when there is one
    style: str = ""  # preprocessing for photos: mnist | fashion | plain
    split: dict[str, Any] | None = None  # train/val indices into the training images
    session: Any = None  # ONNX Runtime session (format "onnx")
    tta: bool = False  # logits = mean over each image and its left-right mirror (config.tta)
    # what fit() did (also read back from a checkpoint)
    train_seconds: float = 0.0
    epochs: float = 0.0
    steps: int = 0
    images: int = 0  # training images processed
    stopped_early: bool = False
    bf16: bool = False
    last_evaluation: Any = None  # the latest evaluate() result, reused by the pictures

    def __post_init__(self) -> None:
        self.classes = tuple(str(c) for c in self.classes)
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.history = History(self.history or [])
        if self.normalizer is None:
            self.normalizer = _normalizer(None)
        self.style = self.style or _style_for(self.dataset)
        if not self.model_args and self.model is not None:
            self.model_args = dict(getattr(self.model, "cnnlab_args", {}) or {})

    # -- description ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The model's registered name (or its class name)."""
        return str(self.model_args.get("name") or type(self.model).__name__)

    @property
    def best_metrics(self) -> dict[str, Any]:
        return self.metrics

    def description(self) -> dict[str, Any]:
        """What every saved form of the model carries (checkpoint keys, export manifest)."""
        from cnnlab.engine.checkpoint import DESCRIPTION_KEYS
        from cnnlab.models.portable import FLATTEN_ORDER

        values = {
            "model_args": dict(self.model_args),
            "input_shape": list(self.input_shape),
            "normalizer": self.normalizer.state_dict(),
            "classes": list(self.classes),
            "dataset": self.dataset,
            "metrics": _plain_metrics(self.metrics),
            "flatten_order": FLATTEN_ORDER,  # loading converted any older layout
            "tta": self.tta,
        }
        return {k: values[k] for k in DESCRIPTION_KEYS}

    def data_dir(self, override: str | Path | None = None) -> str | None:
        """Where to look for the run's dataset: ``override``, else where training found it."""
        if override:
            return str(override)
        return getattr(self.config, "data_dir", None)

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        parts = [f"{self.name} on {self.dataset or '?'}", f"input {c}x{h}x{w}"]
        parts.append(f"{len(self.classes)} classes")
        acc = self.metrics.get("val_accuracy")
        if acc is not None:
            parts.append(f"val_accuracy {float(acc):.4f}")
        where = f", from {self.path}" if self.path else ""
        return f"Run({', '.join(parts)}, {self.format}{where})"

    def _repr_html_(self) -> str:
        c, h, w = self.input_shape
        classes = ", ".join(self.classes[:12]) + (" ..." if len(self.classes) > 12 else "")
        rows = [
            ["model", self.name],
            ["dataset", self.dataset or "?"],
            ["input (C, H, W)", f"{c} x {h} x {w}"],
            ["classes", f"{len(self.classes)}: {classes}"],
            ["format", self.format],
            ["from", str(self.path or "memory")],
        ]
        for key in ("val_accuracy", "val_loss", "train_loss"):
            if self.metrics.get(key) is not None:
                rows.append([key, f"{float(self.metrics[key]):.4f}"])
        if self.steps:
            rows.append(["trained", f"{self.steps} steps, {self.train_seconds:.1f} s"])
        return _html_table(["Run", ""], rows)

    # -- inference ----------------------------------------------------------------------------
    def logits(self, x: np.ndarray, *, time_limit: float | None = None) -> np.ndarray:
        """float32 images (N, C, H, W) in [0, 1] (not yet normalised) -> (N, classes) logits.

        ``time_limit``: seconds each ONNX Runtime run may take before it is stopped
        (:class:`cnnlab.backends.InferenceTimeout`); the server sets it. cnnlab's own torch
        architectures are bounded by their checked sizes and run without one.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ImageError(f"images of shape {tuple(x.shape[1:])}: the model wants "
                             f"{self.input_shape}")  # fmt: skip
        if self.session is not None:
            from cnnlab.backends import onnx_logits
            from cnnlab.engine.tta import mirror_mean

            state = self.normalizer.state_dict()

            def logits_of(batch: np.ndarray) -> np.ndarray:
                return onnx_logits(self.session, batch, state, time_limit)

            return mirror_mean(logits_of, x) if self.tta else logits_of(x)
        import torch

        from cnnlab.engine.evaluate import infer

        batch = self.normalizer(torch.from_numpy(x))
        return infer(self.model, batch, batch_size=1000, tta=self.tta).numpy()

    def predict_arrays(self, x: np.ndarray, *, time_limit: float | None = None) -> list[Prediction]:
        """Classify already-prepared images (N, C, H, W) in [0, 1] (``time_limit``: see
        :meth:`logits`)."""
        from cnnlab.engine.validate import check_logits

        logits = np.asarray(self.logits(x, time_limit=time_limit), dtype=np.float64)
        check_logits(logits, len(x), len(self.classes), self.path or self.name)  # finite, shaped
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        out = []
        for row in probs:
            label = int(row.argmax())
            name = self.classes[label]
            out.append(Prediction(label, name, float(row[label]), row.tolist(), self.classes))
        return out

    def predict(self, images: Any) -> Prediction | list[Prediction]:
        """Classify one image, or a list / folder / batch of them.

        ``images`` may be a path, a PIL image, encoded bytes, a NumPy array or a torch tensor, a
        folder (every image inside, sorted) or a list of any of these. Photos are preprocessed
        like the training data (``style``); an array or tensor already of the model's input
        size ((H, W), (C, H, W) or (N, C, H, W); floats in [0, 1] or uint8) is used as it is.
        One image gives one :class:`~cnnlab.predict.Prediction`, anything else a list.

        >>> run.predict("my_digit.png").class_name  # doctest: +SKIP
        '7'
        """
        single, prepared = self._prepare_many(images)
        if not len(prepared):
            return []
        preds = self.predict_arrays(np.stack(prepared))
        return preds[0] if single else preds

    def _prepare_many(self, images: Any) -> tuple[bool, list[np.ndarray]]:
        if _is_array(images):
            arr = _as_float_array(images)
            if arr.ndim == 4 and tuple(arr.shape[1:]) == self.input_shape:
                return False, list(arr)
            return True, [self.prepare(images)]
        if isinstance(images, str | Path) and Path(images).is_dir():
            return False, [self.prepare(p) for p in collect_images([images])]
        if isinstance(images, list | tuple):
            out = []
            for item in images:
                if isinstance(item, str | Path) and Path(item).is_dir():
                    out += [self.prepare(p) for p in collect_images([item])]
                else:
                    out.append(self.prepare(item))
            return False, out
        return True, [self.prepare(images)]

    def prepare(self, image: Any) -> np.ndarray:
        """What the network sees: float32 (C, H, W) in [0, 1] for one image (see predict)."""
        from cnnlab.images import read_image

        if _is_array(image):
            arr = _as_float_array(image)
            c, h, w = self.input_shape
            if arr.shape == (h, w) and c == 1:
                return arr[None].astype(np.float32)
            if arr.shape == self.input_shape:
                return arr.astype(np.float32)
            if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3, 4):
                arr = np.moveaxis(arr, 0, -1)  # (C, H, W) of another size -> (H, W, C)
            if arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
                raise ImageError(
                    f"image array of shape {tuple(arr.shape)}: expected (H, W), (H, W, 3 or 4) "
                    f"or the model's input shape {self.input_shape}"
                )
            image = Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8))
        source = image
        if not isinstance(image, Image.Image):
            image = read_image(image)
        try:
            return preprocess_channels(image, self.style, self.input_shape)
        except ImageError as exc:  # name the file, as read_image's own errors do
            if not isinstance(source, str | Path):
                raise
            raise ImageError(f"{source}: {exc}") from None

    def set_threads(self, threads: int | None) -> None:
        """Intra-op threads of an ONNX Runtime session (torch models use torch's setting)."""
        if threads and self.session is not None and self.path is not None:
            from cnnlab.backends import onnx_session

            self.session = onnx_session(self.path, threads)

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(
        self,
        dataset: str | None = None,
        *,
        data_dir: str | Path | None = None,
        limit: int | None = None,
        batch_size: int = 1000,
        fast: bool = False,
        force: bool = False,
    ):
        """Test-set metrics (for the run's own image folder: its validation split).

        Args:
            dataset: evaluate on another dataset (a name or an image folder).
            data_dir: where the dataset files are (default: where training found them).
            limit: only the first ``limit`` images.
            batch_size: images per forward pass.
            fast: bf16 + channels_last through a fused TorchScript graph (CPU).
            force: evaluate even when the dataset's class names differ from the model's
                (the same number of classes is still required).

        Returns:
            an :class:`~cnnlab.engine.evaluate.EvalResult`: ``accuracy``, ``loss``,
            ``per_class``, ``confusion`` (also kept as ``run.last_evaluation``).
        """
        import torch

        from cnnlab.engine.evaluate import evaluate, metrics_from_logits

        data, label = self._evaluation_data(dataset, data_dir, limit, force)
        if self.model is not None and self.session is None:
            from cnnlab.engine.device import bf16_supported

            with torch.inference_mode():
                result = evaluate(
                    self.model, data, self.normalizer, batch_size,
                    bf16=fast and bf16_supported(torch.device("cpu")), channels_last=fast,
                    fuse=fast, tta=self.tta,
                )  # fmt: skip
        else:
            chunks = [
                torch.from_numpy(self.logits(data.images[i : i + batch_size].numpy() / 255.0))
                for i in range(0, len(data.labels), batch_size)
            ]
            logits = torch.cat(chunks).float() if chunks else torch.zeros(0, len(self.classes))
            result = metrics_from_logits(logits, data.labels, tuple(data.classes))
        if not np.isfinite(result.loss):  # NaN in --json output is not JSON; say what happened
            raise CheckpointError(
                f"{self.path or self.name}: the model returned NaN or infinite scores on {label}"
            )
        result.images = data.images.numpy()
        result.dataset = label
        self.last_evaluation = result
        return result

    def _evaluation_data(
        self, dataset: str | None, data_dir: Any, limit: int | None, force: bool = False
    ):
        from cnnlab.engine.data_setup import is_folder_dataset, load_split

        name = dataset or self.dataset
        if not name:
            raise CheckpointError(f"{self.path or 'this run'} names no dataset; pass dataset=")
        c, h, w = self.input_shape
        data = load_split(name, "test", self.data_dir(data_dir), image_size=(h, w), channels=c)
        label = f"{Path(name).name} test"
        if is_folder_dataset(name):
            val = (self.split or {}).get("val")
            if dataset is None and val:  # the run's own folder: its held-out images
                data = data.subset(np.asarray(val, dtype=np.int64))
                label = f"{Path(name).name} (validation split)"
            else:
                label = f"{Path(name).name} (all images)"
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise CnnlabError(f"limit={limit!r} must be a positive number of images")
            data = data.subset(np.arange(min(limit, len(data.labels))))
        if tuple(data.images.shape[1:]) != self.input_shape:
            raise CnnlabError(
                f"{name} images are {tuple(data.images.shape[1:])}, "
                f"the model expects {self.input_shape}"
            )
        same_count = len(data.classes) == len(self.classes)
        if not same_count:  # scores and labels must index one class list
            raise CnnlabError(
                f"{self.path or self.name} has {len(self.classes):,} outputs but {label} has "
                f"{len(data.classes):,} classes: evaluate it on the data set it was trained for"
            )
        if tuple(data.classes) != self.classes and not force:
            hint = " (force=True / --force evaluates anyway)" if same_count else ""
            raise CnnlabError(f"{name} has classes {list(data.classes)[:10]}, the model was "
                              f"trained on {list(self.classes)[:10]}{hint}")  # fmt: skip
        return data, label

    def _evaluation(self, ev: Any = None):
        return ev or self.last_evaluation or self.evaluate()

    # -- pictures (matplotlib Figures; nothing global is touched) ---------------------------
    def plot_curves(self):
        """Loss and accuracy against epochs (train and validation)."""
        from cnnlab.viz.training import plot_curves

        if not self.history:
            raise CnnlabError(f"{self.path or 'this run'} has no training history")
        return plot_curves(self.history)

    def plot_confusion(self, ev: Any = None):
        """The confusion matrix of ``ev`` (default: the latest evaluation, or a new one)."""
        from cnnlab.viz.training import plot_confusion

        ev = self._evaluation(ev)
        title = f"{self.name} on {ev.dataset}: accuracy {ev.accuracy:.2%}"
        return plot_confusion(ev.confusion, ev.classes, title=title)

    def plot_top_losses(self, k: int = 9, ev: Any = None):
        """The ``k`` test images with the highest loss: "true -> predicted (probability)"."""
        from cnnlab.viz.training import plot_top_losses

        ev = self._evaluation(ev)
        probs = ev.logits.softmax(-1).numpy()
        return plot_top_losses(ev.images, probs, ev.labels.numpy(), ev.classes, k=k)

    def plot_filters(self, **kwargs: Any):
        """The first convolution's kernels (``layer=`` another one)."""
        from cnnlab.viz.filters import plot_learned_filters

        return plot_learned_filters(self, **kwargs)

    def plot_feature_maps(self, image: Any = "test:0", **kwargs: Any):
        """What each conv / pool layer outputs for ``image`` (a path, array or ``test:N``)."""
        from cnnlab.viz.features import plot_feature_maps

        return plot_feature_maps(self, image, **kwargs)

    def plot_receptive_field(self, image: Any = "test:0", **kwargs: Any):
        """The input region one unit of each layer sees."""
        from cnnlab.viz.receptive import plot_receptive_field

        return plot_receptive_field(self, image, **kwargs)

    def plot_saliency(self, image: Any = "test:0", **kwargs: Any):
        """Input gradient and Grad-CAM of the predicted (or ``target=``) class."""
        from cnnlab.viz.saliency import plot_saliency

        return plot_saliency(self, image, **kwargs)

    def summary(self, depth: int = 3):
        """The layer table (output shapes, parameters, receptive field)."""
        from cnnlab.models.summary import summary

        if self.model is None or self.format == "torchscript":
            raise CnnlabError(f"a {self.format} model has no layer table; load the checkpoint")
        return summary(self.model, input_size=self.input_shape, depth=depth)

    # -- export -------------------------------------------------------------------------------
    def export(self, path: str | Path, format: str | None = None, **kwargs: Any):
        """Write ONNX / TorchScript / safetensors (by suffix, or ``format=``), round-trip checked.

        >>> run.export("model.onnx").max_abs_diff < 1e-4  # doctest: +SKIP
        True
        """
        from cnnlab.export import export_model, format_for

        return export_model(self, format or format_for(path), path, **kwargs)


def _plain_metrics(metrics: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items() if isinstance(metrics, dict) else ():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("torch")


def _as_float_array(x: Any) -> np.ndarray:
    """NumPy float32 in [0, 1]: uint8 (and other integer) arrays are divided by 255."""
    if not isinstance(x, np.ndarray):
        x = x.detach().cpu().numpy()
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        return x.astype(np.float32) / (1.0 if x.dtype == bool else 255.0)
    return np.asarray(x, dtype=np.float32)


# -- loading ------------------------------------------------------------------------------------
def load(
    source: str | Path, *, which: str = "best", style: str | None = None, trust_code: bool = False
) -> Run:
    """A :class:`Run` from a run folder, ``.pt`` checkpoint, ``.safetensors`` (+ ``.json``
    manifest), ``.onnx`` or TorchScript file.

    Args:
        source: the folder or file (a run-name folder resolves to its latest version).
        which: ``best`` or ``last`` checkpoint of a run folder.
        style: preprocessing of photos (``mnist``, ``fashion``, ``plain``; default: by dataset).
        trust_code: allow a TorchScript file, which holds code that loading runs; every other
            format is data only and needs no trust.

    >>> run = load("runs/tutorial_cnn-mnist")  # doctest: +SKIP
    """
    from cnnlab.engine.checkpoint import resolve_checkpoint
    from cnnlab.engine.validate import check_backend
    from cnnlab.fileio import check_regular_file

    path = Path(source)
    if path.is_dir():
        path = resolve_checkpoint(path, which)
    if not path.exists():
        raise CheckpointError(f"no such checkpoint or run folder: {path}")
    check_regular_file(path, what="model file", error=CheckpointError)  # not a device or a pipe
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        run = _load_onnx(path)
    elif suffix in (".safetensors", ".json"):
        run = _load_safetensors(path)
    elif suffix in (".pt", ".pth"):
        if not _is_torchscript(path):
            run = _load_checkpoint(path)
        elif trust_code:
            run = _load_torchscript(path)
        else:
            raise CheckpointError(
                f"{path} is a TorchScript archive, which holds code: load it with "
                "trust_code=True if you made it, or use its checkpoint, .onnx or .safetensors"
            )
    else:
        raise CheckpointError(
            f"cannot load {path}: unknown model file type {path.suffix!r} "
            "(known: .pt, .pth, .safetensors, .json, .onnx)"
        )
    if style is not None:
        run.style = style
    check_backend(run, path)  # one blank image: scores of the right shape, finite
    return run


def as_run(run: Any, which: str = "best") -> Run:
    """A :class:`Run` from a Run (returned as is), a path (:func:`load`) or a bare ``nn.Module``
    (classes ``0..K-1``, inputs used as they are)."""
    if isinstance(run, Run):
        return run
    import torch

    if isinstance(run, torch.nn.Module):
        args = dict(getattr(run, "cnnlab_args", {}) or {})
        c, size = int(args.get("in_channels", 1)), args.get("input_size", 28)
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        classes = tuple(str(i) for i in range(int(args.get("num_classes", 10))))
        return Run(run.eval(), classes, (c, h, w), model_args=args)
    return load(run, which=which)


def _normalizer(state: Any):
    from cnnlab.data import Normalizer

    return Normalizer.from_state(state) if state else Normalizer("unit")


def _from_description(model: Any, d: dict[str, Any], path: Path, fmt: str, **kw: Any) -> Run:
    args = dict(d.get("model_args") or {})
    shape = d.get("input_shape") or (args.get("in_channels", 1), 28, 28)
    classes = d.get("classes") or [str(i) for i in range(int(args.get("num_classes", 10)))]
    if len(shape) != 3 or not all(isinstance(s, int) and 0 < s <= 65536 for s in shape):
        raise CheckpointError(f"{path}: input_shape {shape!r} is not (C, H, W) of sane sizes")
    return Run(
        model=model,
        classes=tuple(classes),
        input_shape=tuple(shape),
        normalizer=_normalizer(d.get("normalizer")),
        dataset=str(d.get("dataset") or ""),
        model_args=args,
        metrics=dict(d.get("metrics") or {}),
        path=path,
        format=fmt,
        style=str(d.get("style") or ""),
        tta=d.get("tta") is True,
        **kw,
    )


def _load_checkpoint(path: Path) -> Run:
    from cnnlab.config import TrainConfig
    from cnnlab.engine.checkpoint import load_checkpoint
    from cnnlab.engine.validate import check_payload, rebuild_model

    payload = load_checkpoint(path)
    # every field checked, the network sized on the meta device, before anything is allocated
    model = rebuild_model(payload, path)
    payload = {**payload, **check_payload(payload, path)}
    try:
        config = TrainConfig.from_dict(payload.get("config") or {}, source=str(path))
    except CnnlabError:  # a config from another version: the model still works without it
        config = None
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else None
    history = _full_history(run_dir) or payload.get("history") or []
    return _from_description(
        model.eval(), payload, path, "checkpoint", config=config, history=history,
        run_dir=run_dir, split=_plain_split(payload.get("split")),
        train_seconds=float(payload.get("train_seconds") or 0.0),
        epochs=float(history[-1]["epoch"]) if history else float(payload.get("epoch") or 0),
        steps=int(payload.get("step") or 0), images=int(payload.get("images_seen") or 0),
        bf16=bool(getattr(config, "bf16", False)),
    )  # fmt: skip


def _plain_split(split: Any) -> dict[str, Any] | None:
    """A checkpoint's split with its index tensors as lists (as ``fit`` returns it)."""
    if not isinstance(split, dict):
        return None
    return {k: v.tolist() if hasattr(v, "tolist") else v for k, v in split.items()}


def _full_history(run_dir: Path | None) -> list[dict[str, Any]]:
    """history.json of a run folder: every evaluation (``best.pt`` stops at its own)."""
    if run_dir is None or not (run_dir / "history.json").is_file():
        return []
    try:
        rows = json.loads((run_dir / "history.json").read_text())
    except (ValueError, OSError) as exc:
        raise CheckpointError(f"unreadable history: {run_dir / 'history.json'} ({exc})") from None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _load_safetensors(path: Path) -> Run:
    from cnnlab.backends import load_manifest_model

    model, manifest = load_manifest_model(path)
    return _from_description(model, manifest, path, "safetensors")


def _load_onnx(path: Path) -> Run:
    from cnnlab.backends import onnx_manifest, onnx_session

    session = onnx_session(path)
    return _from_description(None, onnx_manifest(session, path), path, "onnx", session=session)


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives hold compiled code (``code/``); torch.save archives do not."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.endswith("constants.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _load_torchscript(path: Path) -> Run:
    import torch

    from cnnlab.backends import check_manifest

    extra = {"cnnlab.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice
            model = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # torch.jit raises RuntimeError and friends
        raise CheckpointError(f"cannot load TorchScript file {path}: {exc}") from None
    try:
        manifest = json.loads(extra["cnnlab.json"] or "null")
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt cnnlab metadata ({exc})") from None
    return _from_description(model.eval(), check_manifest(manifest, path), path, "torchscript")


__all__ = ["History", "IMAGE_EXTENSIONS", "Run", "as_run", "load"]
