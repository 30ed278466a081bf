"""What lies beyond the border of an input: the padding modes of torch, SciPy and NumPy.

========== =========================== ================== ================ ==============
mode       padded values (input abcd)  torch padding_mode SciPy boundary   numpy.pad mode
========== =========================== ================== ================ ==============
zeros      ``00|abcd|00``              zeros              fill             constant
constant   ``vv|abcd|vv`` (fillvalue)  (F.pad constant)   fill, fillvalue  constant
reflect    ``cb|abcd|cb``              reflect            (none)           reflect
replicate  ``aa|abcd|dd``              replicate          (none)           edge
symmetric  ``ba|abcd|dc``              (none)             symm             symmetric
circular   ``cd|abcd|ab``              circular           wrap             wrap
========== =========================== ================== ================ ==============

``replicate`` is the "extension" boundary of image-processing courses. As in torch,
``reflect`` needs a padding smaller than the input size. ``circular`` and ``symmetric``
padding wider than the input repeats the pattern, as SciPy's ``"wrap"`` and ``"symm"`` do for
kernels longer than the input (torch refuses a ``circular`` padding wider than the input).
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.ops.integer import python_ints

PADDING_MODES = ("zeros", "constant", "reflect", "replicate", "symmetric", "circular")
_NUMPY_MODES = {
    "reflect": "reflect",
    "replicate": "edge",
    "symmetric": "symmetric",
    "circular": "wrap",
}


def check_padding_mode(mode: str, fillvalue: float = 0) -> str:
    """Return ``mode`` if it is one of :data:`PADDING_MODES`, else raise naming it."""
    if mode not in PADDING_MODES:
        raise CnnlabError(f"padding_mode={mode!r} is not one of {', '.join(PADDING_MODES)}")
    finite = isinstance(fillvalue, numbers.Integral) or (
        isinstance(fillvalue, numbers.Real) and np.isfinite(float(fillvalue))
    )
    if not finite or isinstance(fillvalue, bool):
        raise CnnlabError(f"fillvalue={fillvalue!r} is not a finite number")
    if fillvalue != 0 and mode != "constant":
        raise CnnlabError(
            f"fillvalue={fillvalue!r} is only used with padding_mode='constant' "
            f"(got padding_mode={mode!r})"
        )
    return mode


def pad_array(x: np.ndarray, pads, mode: str, fillvalue: float = 0) -> np.ndarray:
    """Pad the last ``len(pads)`` axes of ``x`` by ``pads[i] = (before, after)`` in ``mode``.

    >>> pad_array(np.array([1, 2, 3, 4]), [(2, 2)], "reflect").tolist()
    [3, 2, 1, 2, 3, 4, 3, 2]
    """
    check_padding_mode(mode, fillvalue)
    lead = [(0, 0)] * (x.ndim - len(pads))
    if mode in ("zeros", "constant"):
        return _pad_constant(x, lead + [tuple(p) for p in pads], fillvalue)
    if mode == "reflect":  # torch's rule; the other modes repeat their pattern as SciPy does
        for axis, (before, after) in zip(range(x.ndim - len(pads), x.ndim), pads, strict=True):
            if max(before, after) >= x.shape[axis]:
                raise CnnlabError(
                    f"padding=({before}, {after}) must be smaller than the input size "
                    f"{x.shape[axis]} for padding_mode='reflect'"
                )
    return np.pad(x, lead + [tuple(p) for p in pads], mode=_NUMPY_MODES[mode])


def _pad_constant(x: np.ndarray, width: list, fillvalue: float) -> np.ndarray:
    """``numpy.pad`` with a constant that keeps integers exact (Python ints where int64 ends)."""
    integer = x.dtype.kind in "iuO"
    if integer and not float(fillvalue).is_integer():
        x = x.astype(np.float64)  # a fractional fill makes the result fractional
    elif integer:
        fill = int(fillvalue)
        fits = -(2**63) <= fill < 2**63 and x.dtype != np.uint64
        if x.dtype != object and fits:
            return np.pad(x.astype(np.int64, copy=False), width, constant_values=fill)
        # Python ints: build the array by hand (np.pad would fill with np.int64 objects)
        out = np.full([n + a + b for n, (a, b) in zip(x.shape, width, strict=True)], fill, object)
        out[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, width, strict=True))] = python_ints(
            x
        )
        return out
    return np.pad(x, width, constant_values=fillvalue)
