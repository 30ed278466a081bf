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


def _targets(target, shape: tuple[int, ...]) -> np.ndarray:
    """One-hot (same shape as the scores) or integer class indices -> soft/one-hot matrix."""
    t = np.asarray(target)
    if t.shape == shape:
        return t.astype(np.float64)
    if t.shape == shape[:-1] and (np.issubdtype(t.dtype, np.integer) or np.all(t == np.round(t))):
        k = shape[-1]
        idx = t.astype(np.int64)
        if np.any((idx < 0) | (idx >= k)):
            bad = idx[(idx < 0) | (idx >= k)].flat[0]
            raise CnnlabError(f"class index {bad} out of range for {k} classes")
        return np.eye(k)[idx]
    raise CnnlabError(
        f"target shape {t.shape} fits neither one-hot {shape} nor class indices {shape[:-1]}"
    )


def categorical_cross_entropy(probs, target, reduction: str = "mean"):
    """``-sum_c y_c log p_c`` per sample from probabilities (rows sum to 1).

    ``target`` is one-hot / soft (same shape) or integer class indices (one fewer axis).

    >>> round(categorical_cross_entropy([[0.25, 0.75]], [1]), 6)
    0.287682
    """
    p = _float(probs, "probabilities")
    if np.any((p < 0) | (p > 1)):
        raise CnnlabError("probabilities must lie in [0, 1]; got values outside (pass logits?)")
    t = _targets(target, p.shape)
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), _LOG_FLOOR)
    return _reduce(-(t * log_p).sum(axis=-1), reduction)


def cross_entropy_with_logits(logits, target, reduction: str = "mean"):
    """Categorical cross-entropy of ``softmax(logits)`` via log-softmax (torch's ``cross_entropy``).

    >>> round(cross_entropy_with_logits([[0.0, 0.0]], [0]), 6)
    0.693147
    """
    z = _float(logits, "logits")
    t = _targets(target, z.shape)
    return _reduce(-(t * log_softmax(z, axis=-1)).sum(axis=-1), reduction)
