"""Inference and metrics: ``infer`` returns logits, ``evaluate`` derives metrics from them.

>>> import torch
>>> infer(torch.nn.Flatten(), torch.zeros(3, 1, 2, 2)).shape
torch.Size([3, 4])
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.engine.device import autocast
from cnnlab.engine.tta import mirror_mean
from cnnlab.errors import ConfigError


def infer(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
    bf16: bool = False,
    channels_last: bool = False,
    fuse: bool = False,
    tta: bool = False,
) -> torch.Tensor:
    """Logits (float32, on the CPU) for a float batch ``x``, in eval mode, batched.

    ``fuse``: run a frozen TorchScript trace with oneDNN graph fusion (CPU only; see
    :func:`fused_inference`) instead of the eager model. ``tta``: the mean of the logits of each
    image and of its left-right mirror (flip test-time augmentation). The model's train/eval
    mode is restored afterwards.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        run = model
        if fuse and len(x):
            run = fused_inference(model, x[:batch_size], bf16=bf16, channels_last=channels_last)
            bf16 = False  # inside the fused graph
        with torch.inference_mode(), autocast(device, bf16):
            for i in range(0, len(x), batch_size):
                xb = x[i : i + batch_size].to(device, non_blocking=True)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                logits = run(xb).float()
                if tta:
                    logits = mirror_mean(lambda b: run(b).float(), xb, logits)
                out.append(logits.cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


class FusedInference(torch.nn.Module):
    """A model traced and frozen with TorchScript, run with oneDNN graph fusion on the CPU.

    Freezing folds the weights into the graph (later changes to the model's weights are not
    seen); oneDNN's graph compiler then fuses each convolution with its bias, ReLU and pooling,
    in bf16 on AMX / AVX512-BF16 CPUs. Measured on tutorial_cnn with 2 cores (bench/infer.py):
    40,719 images/s against 15,053 for eager bf16 + channels_last. The first two calls per input
    shape profile and compile the graph (done here for ``example``'s shape).
    """

    def __init__(
        self, model: torch.nn.Module, example: torch.Tensor, bf16: bool, channels_last: bool
    ) -> None:
        super().__init__()
        self.bf16 = bf16
        model = copy.deepcopy(model).eval()  # constants must not alias the caller's weights
        if channels_last:
            example = example.contiguous(memory_format=torch.channels_last)
            model = model.to(memory_format=torch.channels_last)
        with torch.no_grad(), self._autocast(), warnings.catch_warnings():
            # torch 2.13 marks TorchScript deprecated; torch.compile, its suggested
            # replacement, failed on this (channels_last bf16 conv) graph when measured
            warnings.simplefilter("ignore", DeprecationWarning)
            self.graph = torch.jit.freeze(torch.jit.trace(model, example))
        self.eval()
        for _ in range(2):  # the profiling runs
            self(example)

    def _autocast(self):
        # autocast is traced into the graph; its weight cache must be off while tracing
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self._autocast(), _onednn_fusion():
            return self.graph(x)


@contextlib.contextmanager
def _onednn_fusion():
    """oneDNN graph fusion for the calls inside only: the switch is process-wide, and other
    TorchScript modules (a user's exported model) must not run through its passes."""
    before = torch.jit.onednn_fusion_enabled()
    torch.jit.enable_onednn_fusion(True)
    try:
        yield
    finally:
        torch.jit.enable_onednn_fusion(before)


def fused_inference(
    model: torch.nn.Module,
    example: torch.Tensor,
    *,
    bf16: bool = False,
    channels_last: bool = False,
) -> FusedInference:
    """A :class:`FusedInference` of ``model`` for inputs like ``example`` (CPU models only)."""
    if _model_device(model).type != "cpu":
        raise ConfigError("fused inference (oneDNN graph) runs on the CPU only")
    return FusedInference(model, example, bf16, channels_last)


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@dataclass(repr=False)
class EvalResult:
    """Metrics of one evaluation; ``per_class`` maps class name -> precision/recall/f1/support."""

    loss: float
    accuracy: float
    per_class: dict[str, dict[str, float]]
    confusion: np.ndarray  # (classes, classes): rows true, columns predicted
    logits: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...] = ()
    images: np.ndarray | None = None  # uint8 (N, C, H, W) evaluated, when known (pictures)
    dataset: str = ""  # what was evaluated, for titles ("mnist test")

    def __repr__(self) -> str:
        on = f" on {len(self.labels):,} images" + (f" of {self.dataset}" if self.dataset else "")
        return f"EvalResult(accuracy={self.accuracy:.4f}, loss={self.loss:.4f}{on})"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{m['precision']:.3f}</td>"
            f"<td>{m['recall']:.3f}</td><td>{m['f1']:.3f}</td><td>{m['support']}</td></tr>"
            for name, m in list(self.per_class.items())[:50]
        )
        return (
            f"<p>{html.escape(repr(self))}</p><table><tr><th>class</th><th>precision</th>"
            f"<th>recall</th><th>F1</th><th>support</th></tr>{rows}</table>"
        )

    def text(self) -> str:
        """A human-readable table: overall numbers then one line per class."""
        lines = [
            f"{self.dataset or 'evaluation'} ({len(self.labels)} images): "
            f"accuracy {self.accuracy:.2%}, loss {self.loss:.4f}",
            f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
        ]
        for name, m in self.per_class.items():
            lines.append(
                f"{name[:13]:<14}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                f"{m['f1']:>10.4f}{m['support']:>9d}"
            )
        return "\n".join(lines)

    def top_losses(self, k: int = 9) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the ``k`` images with the highest cross-entropy, and those losses."""
        losses = F.cross_entropy(self.logits.float(), self.labels, reduction="none").numpy()
        order = np.argsort(-losses, kind="stable")[: max(0, k)]
        return order, losses[order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no logits)."""
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "per_class": self.per_class,
            "confusion": self.confusion.tolist(),
        }


def metrics_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...] | list[str]
) -> EvalResult:
    """Cross-entropy, accuracy, confusion matrix and per-class precision/recall/F1."""
    k = len(classes)
    loss = F.cross_entropy(logits, labels).item() if len(labels) else float("nan")
    pred = logits.argmax(1) if len(labels) else labels
    confusion = torch.bincount(labels * k + pred, minlength=k * k).reshape(k, k).numpy()
    tp = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(0), confusion.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    pr = precision + recall
    f1 = np.divide(2 * precision * recall, pr, out=np.zeros(k), where=pr > 0)
    per_class = {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }
    accuracy = float(tp.sum() / max(1, len(labels)))
    return EvalResult(
        loss, accuracy, per_class, confusion, logits, labels, tuple(map(str, classes))
    )


def evaluate(
    model: torch.nn.Module,
    dataset: Any,
    normalizer: Any,
    batch_size: int = 1000,
    *,
    device: torch.device | str | None = None,
    bf16: bool = False,
    channels_last: bool = False,
    fuse: bool = False,
    tta: bool = False,
) -> EvalResult:
    """Evaluate on an ArrayDataset (uint8 images), normalised batch by batch (``fuse``: through
    one :class:`FusedInference` traced on the first batch; ``tta``: see :func:`infer`).

    >>> # result = evaluate(model, load_dataset("mnist", "test"), normalizer)  # doctest: +SKIP
    """
    chunks = []
    for i in range(0, len(dataset.labels), max(batch_size, 1) * 10):
        x = normalizer(dataset.images[i : i + batch_size * 10])
        if fuse and not isinstance(model, FusedInference):
            model = fused_inference(model, x[:batch_size], bf16=bf16, channels_last=channels_last)
            bf16 = False  # inside the fused graph
        chunks.append(
            infer(
                model,
                x,
                batch_size=batch_size,
                device=device,
                bf16=bf16,
                channels_last=channels_last,
                tta=tta,
            )
        )
    logits = torch.cat(chunks) if chunks else torch.zeros(0, len(dataset.classes))
    return metrics_from_logits(logits, dataset.labels.cpu(), tuple(dataset.classes))
