"""Inference and metrics: ``infer`` returns logits, ``evaluate`` derives metrics from them.

>>> import torch
>>> infer(torch.nn.Flatten(), torch.zeros(3, 1, 2, 2)).shape
torch.Size([3, 4])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.engine.device import autocast


def infer(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
    bf16: bool = False,
    channels_last: bool = False,
) -> torch.Tensor:
    """Logits (float32, on the CPU) for a float batch ``x``, in eval mode, batched.

    The model's train/eval mode is restored afterwards.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode(), autocast(device, bf16):
            for i in range(0, len(x), batch_size):
                xb = x[i : i + batch_size].to(device, non_blocking=True)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                out.append(model(xb).float().cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@dataclass
class EvalResult:
    """Metrics of one evaluation; ``per_class`` maps class name -> precision/recall/f1/support."""

    loss: float
    accuracy: float
    per_class: dict[str, dict[str, float]]
    confusion: np.ndarray  # (classes, classes): rows true, columns predicted
    logits: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)

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
    return EvalResult(loss, accuracy, per_class, confusion, logits, labels)


def evaluate(
    model: torch.nn.Module,
    dataset: Any,
    normalizer: Any,
    batch_size: int = 1000,
    *,
    device: torch.device | str | None = None,
    bf16: bool = False,
    channels_last: bool = False,
) -> EvalResult:
    """Evaluate on an ArrayDataset (uint8 images), normalised batch by batch.

    >>> # result = evaluate(model, load_dataset("mnist", "test"), normalizer)  # doctest: +SKIP
    """
    chunks = []
    for i in range(0, len(dataset.labels), max(batch_size, 1) * 10):
        x = normalizer(dataset.images[i : i + batch_size * 10])
        chunks.append(
            infer(
                model,
                x,
                batch_size=batch_size,
                device=device,
                bf16=bf16,
                channels_last=channels_last,
            )
        )
    logits = torch.cat(chunks) if chunks else torch.zeros(0, len(dataset.classes))
    return metrics_from_logits(logits, dataset.labels.cpu(), tuple(dataset.classes))
