"""Activations and losses in NumPy, numerically stable (notebook 000, section 5).

Softmax subtracts the row maximum before ``exp`` and the logit losses use the log-sum-exp
form, so logits of 1e4 neither overflow nor produce NaN. Losses reduce with ``"mean"``
(default, like PyTorch), ``"sum"`` or ``"none"``.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError

REDUCTIONS = ("mean", "sum", "none")
_LOG_FLOOR = -100.0  # torch.nn.functional.binary_cross_entropy clamps log(p) at -100


def _float(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        raise CnnlabError(f"{name} is empty")
    return arr


def _reduce(values: np.ndarray, reduction: str):
    if reduction == "mean":
        return float(values.mean())
    if reduction == "sum":
        return float(values.sum())
    if reduction == "none":
        return values
    raise CnnlabError(f"reduction={reduction!r} is not one of {', '.join(REDUCTIONS)}")


def relu(x) -> np.ndarray:
    """``max(x, 0)``.

    >>> relu([-1.0, 2.0]).tolist()
    [0.0, 2.0]
    """
    return np.maximum(_float(x, "input"), 0.0)


def sigmoid(x) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow for large |x|.

    >>> sigmoid([0.0, 1000.0, -1000.0]).tolist()
    [0.5, 1.0, 0.0]
    """
    x = _float(x, "input")
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x) -> np.ndarray:
    """Hyperbolic tangent.

    >>> tanh([0.0]).tolist()
    [0.0]
    """
    return np.tanh(_float(x, "input"))


def log_softmax(z, axis: int = -1) -> np.ndarray:
    """``z - logsumexp(z)`` along ``axis``, stable for large logits.

    >>> np.round(np.exp(log_softmax([1.0, 1.0])), 3).tolist()
    [0.5, 0.5]
    """
    z = _float(z, "logits")
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` along ``axis``, computed as ``exp(z - max z)`` (no overflow).

    >>> np.round(softmax([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0]), 3).tolist()
    [0.024, 0.064, 0.175, 0.475, 0.024, 0.064, 0.175]
    """
    z = _float(z, "logits")
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def mse(y_pred, y_true, reduction: str = "mean"):
    """Mean squared error ``mean((y_pred - y_true)**2)`` (the notebook's ``MSE``).

    >>> mse([1.0, 2.0], [1.0, 4.0])
    2.0
    """
    p, t = _float(y_pred, "prediction"), _float(y_true, "target")
    if p.shape != t.shape:
        raise CnnlabError(f"prediction shape {p.shape} != target shape {t.shape}")
    return _reduce((p - t) ** 2, reduction)


def binary_cross_entropy(p, y, reduction: str = "mean"):
    """``-(y log p + (1 - y) log(1 - p))`` from probabilities (log clamped at -100, as torch).

    >>> round(binary_cross_entropy([0.9], [1.0]), 6)
    0.105361
    """
    p, y = _float(p, "probabilities"), _float(y, "target")
    if p.shape != y.shape:
        raise CnnlabError(f"probabilities shape {p.shape} != target shape {y.shape}")
    if np.any((p < 0) | (p > 1)):
        raise CnnlabError("probabilities must lie in [0, 1]; got values outside (pass logits?)")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), _LOG_FLOOR)
        log_q = np.maximum(np.log1p(-p), _LOG_FLOOR)
    return _reduce(-(y * log_p + (1 - y) * log_q), reduction)


def binary_cross_entropy_with_logits(z, y, reduction: str = "mean"):
    """BCE of ``sigmoid(z)`` as ``max(z, 0) - z y + log(1 + exp(-|z|))`` (stable).

    >>> round(binary_cross_entropy_with_logits([1000.0], [1.0]), 6)
    0.0
    """
    z, y = _float(z, "logits"), _float(y, "target")
    if z.shape != y.shape:
        raise CnnlabError(f"logits shape {z.shape} != target shape {y.shape}")
    return _reduce(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), reduction)


def _class_indices(t: np.ndarray, k: int) -> np.ndarray:
    """Integer class indices in ``[0, k)``, or a one-line error naming the first bad one."""
    idx = t.astype(np.int64)
    if np.any((idx < 0) | (idx >= k)):
        bad = idx[(idx < 0) | (idx >= k)].flat[0]
        raise CnnlabError(f"class index {bad} out of range for {k} classes")
    return idx


def _cross_entropy(log_p, target, weight, label_smoothing, reduction):
    """torch's ``cross_entropy`` from log-probabilities; class axis last.

    Class-index targets: ``loss_i = (1 - e) w[y_i] (-log p[y_i]) + e / C sum_c w_c (-log p_c)``
    and "mean" divides by ``sum_i w[y_i]``. One-hot / soft targets are smoothed to
    ``t (1 - e) + e / C``, ``loss_i = -sum_c w_c t_c log p_c`` and "mean" divides by N.
    """
    shape, k = log_p.shape, log_p.shape[-1]
    if not 0.0 <= label_smoothing <= 1.0:
        raise CnnlabError(f"label_smoothing={label_smoothing} must lie in [0, 1]")
    w = np.ones(k) if weight is None else _float(weight, "weight")
    if w.shape != (k,) or not np.isfinite(w).all():
        raise CnnlabError(f"weight has shape {w.shape}; expected ({k},) finite numbers")
    t = np.asarray(target)
    if t.shape == shape:  # probabilities (one-hot or soft)
        t = t.astype(np.float64)
        if label_smoothing:
            t = t * (1.0 - label_smoothing) + label_smoothing / k
        return _reduce(-(log_p * w * t).sum(axis=-1), reduction)
    if t.shape != shape[:-1] or not (
        np.issubdtype(t.dtype, np.integer) or np.all(t == np.round(t))
    ):
        raise CnnlabError(
            f"target shape {t.shape} fits neither one-hot {shape} nor class indices {shape[:-1]}"
        )
    idx = _class_indices(t, k)
    wy = w[idx]
    loss = -wy * np.take_along_axis(log_p, idx[..., None], axis=-1)[..., 0]
    if label_smoothing:
        smooth = -(log_p * w).sum(axis=-1)
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / k) * smooth
    if reduction == "mean":
        return float(loss.sum() / wy.sum())
    return _reduce(loss, reduction)


def categorical_cross_entropy(
    probs, target, reduction: str = "mean", weight=None, label_smoothing: float = 0.0
):
    """``-sum_c y_c log p_c`` per sample from probabilities (rows sum to 1).

    ``target`` is one-hot / soft (same shape) or integer class indices (one fewer axis);
    ``weight`` and ``label_smoothing`` work as in :func:`cross_entropy_with_logits`.

    >>> round(categorical_cross_entropy([[0.25, 0.75]], [1]), 6)
    0.287682
    """
    p = _float(probs, "probabilities")
    if np.any((p < 0) | (p > 1)):
        raise CnnlabError("probabilities must lie in [0, 1]; got values outside (pass logits?)")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), _LOG_FLOOR)
    return _cross_entropy(log_p, target, weight, label_smoothing, reduction)


def cross_entropy_with_logits(
    logits, target, reduction: str = "mean", weight=None, label_smoothing: float = 0.0
):
    """Categorical cross-entropy of ``softmax(logits)`` via log-softmax (torch's ``cross_entropy``).

    Args:
        logits: scores (..., C), class axis LAST (torch puts it at axis 1).
        target: integer class indices (...) or one-hot / soft probabilities (..., C).
        reduction: "mean", "sum" or "none".
        weight: (C,) per-class weights. With class indices, "mean" divides by the summed
            weights of the targets (torch's rule); with probabilities, by the sample count.
        label_smoothing: e in [0, 1]; the target becomes ``(1 - e) target + e / C``.

    >>> round(cross_entropy_with_logits([[0.0, 0.0]], [0]), 6)
    0.693147
    >>> round(cross_entropy_with_logits([[2.0, 0.0]], [0], label_smoothing=0.2), 6)
    0.326928
    """
    z = _float(logits, "logits")
    return _cross_entropy(log_softmax(z, axis=-1), target, weight, label_smoothing, reduction)
