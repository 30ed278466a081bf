"""Output-size and padding arithmetic for convolution and pooling (one formula per helper).

Every helper validates its arguments and raises :class:`~cnnlab.errors.CnnlabError` with a
message that repeats the values it got, e.g. ``stride=0 for input of length 5``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from cnnlab.errors import CnnlabError

Padding = str | int | Sequence[int]
PADDING_MODES = ("valid", "same", "full")


def _check_int(name: str, value: object, minimum: int, context: str = "") -> int:
    """Return ``value`` as an int >= ``minimum`` or raise naming it."""
    if type(value) is int and value >= minimum:  # fast path: called many times per conv
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise CnnlabError(f"{name}={value!r} is not an integer{context}")
    if int(value) < minimum:
        raise CnnlabError(f"{name}={int(value)} must be >= {minimum}{context}")
    return int(value)


def effective_kernel_size(m: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``d * (m - 1) + 1``.

    >>> effective_kernel_size(3, dilation=2)
    5
    """
    return dilation * (m - 1) + 1


def output_size(n: int, m: int, p: int | tuple[int, int] = 0, s: int = 1, dilation: int = 1) -> int:
    """Length of a convolution output: ``floor((n + 2p - d(m - 1) - 1) / s) + 1``.

    Args:
        n: input length.
        m: kernel length.
        p: zero padding on each side, or ``(before, after)`` for asymmetric padding.
        s: stride.
        dilation: spacing between kernel taps.

    Raises:
        CnnlabError: for a non-positive size or stride, negative padding, or a (dilated) kernel
            longer than the padded input.

    >>> output_size(10, 5, p=2, s=1)
    10
    """
    where = f" for input of length {n}"
    n = _check_int("n", n, 1)
    m = _check_int("kernel size", m, 1, where)
    s = _check_int("stride", s, 1, where)
    dilation = _check_int("dilation", dilation, 1, where)
    before, after = (p, p) if not isinstance(p, tuple | list) else p
    before = _check_int("padding", before, 0, where)
    after = _check_int("padding", after, 0, where)
    padded = n + before + after
    span = effective_kernel_size(m, dilation)
    if span > padded:
        dil = f" (dilation {dilation} makes it span {span})" if dilation > 1 else ""
        raise CnnlabError(
            f"kernel of size {m}{dil} is larger than the padded input of length {padded} "
            f"(n={n}, padding=({before}, {after}))"
        )
    return (padded - span) // s + 1


def pool_output_size(
    n: int, k: int, p: int = 0, s: int = 1, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Pooling output length, torch's rule: ``floor`` (or ``ceil``) of
    ``(n + 2p - d(k - 1) - 1) / s``, plus 1.

    With ``ceil_mode`` a last, partial window is kept, unless it would START in the right
    padding (``(out - 1) s >= n + p``): then it is dropped, as torch drops it.

    Raises:
        CnnlabError: for bad values, padding above half the pool size (torch's rule, so no
            window holds padding only), or no window at all.

    >>> pool_output_size(5, 2, s=2), pool_output_size(5, 2, s=2, ceil_mode=True)
    (2, 3)
    >>> pool_output_size(4, 2, p=1, s=2, ceil_mode=True)  # a 4th window would start in padding
    3
    """
    where = f" for input of length {n}"
    n = _check_int("n", n, 1)
    k = _check_int("kernel size", k, 1, where)
    s = _check_int("stride", s, 1, where)
    dilation = _check_int("dilation", dilation, 1, where)
    p = _check_int("padding", p, 0, where)
    if p > k // 2:
        raise CnnlabError(f"padding={p} must be at most half the pool size {k}")
    span = effective_kernel_size(k, dilation)
    out = (n + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    if out < 1:
        dil = f" (dilation {dilation} makes it span {span})" if dilation > 1 else ""
        raise CnnlabError(
            f"kernel of size {k}{dil} is larger than the padded input of length {n + 2 * p} "
            f"(n={n}, padding={p}, stride={s}, ceil_mode={ceil_mode})"
        )
    return out


def same_padding(n: int, m: int, s: int = 1, dilation: int = 1, *, flip: bool = False):
    """Zero padding ``(before, after)`` that makes the output length ``ceil(n / s)``.

    This is TensorFlow's ``padding="SAME"`` rule: the total padding is
    ``max((ceil(n/s) - 1) * s + d(m - 1) + 1 - n, 0)``; when it is odd the extra zero goes
    after (bottom/right). With ``flip=True`` and ``s == 1`` (true convolution, where the kernel is
    flipped) the extra zero goes before instead, which reproduces ``numpy.convolve`` /
    ``scipy.signal.convolve2d`` ``mode="same"`` for even-sized kernels.

    >>> same_padding(5, 3)
    (1, 1)
    >>> same_padding(6, 3, s=2)
    (0, 1)
    >>> same_padding(7, 4), same_padding(7, 4, flip=True)
    ((1, 2), (2, 1))
    """
    where = f" for input of length {n}"
    n = _check_int("n", n, 1)
    m = _check_int("kernel size", m, 1, where)
    s = _check_int("stride", s, 1, where)
    dilation = _check_int("dilation", dilation, 1, where)
    out = math.ceil(n / s)
    total = max((out - 1) * s + effective_kernel_size(m, dilation) - n, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if flip and s == 1 else (small, big)


def full_padding(m: int, dilation: int = 1) -> tuple[int, int]:
    """Padding of ``mode="full"``: every partial overlap, ``d(m - 1)`` on each side.

    >>> full_padding(5)
    (4, 4)
    """
    p = effective_kernel_size(m, dilation) - 1
    return (p, p)


def resolve_padding(
    n: int,
    m: int,
    padding: str | int | Sequence[int],
    s: int = 1,
    dilation: int = 1,
    *,
    flip: bool = False,
) -> tuple[int, int]:
    """Turn a padding spec for one axis into ``(before, after)`` zeros.

    ``padding`` is ``"valid"`` (none), ``"same"`` (see :func:`same_padding`), ``"full"``, an
    int ``p`` (``p`` zeros on both sides) or a pair ``(before, after)``.

    >>> resolve_padding(8, 5, "same"), resolve_padding(8, 5, 2), resolve_padding(8, 5, "full")
    ((2, 2), (2, 2), (4, 4))
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0)
        if mode == "same":
            return same_padding(n, m, s, dilation, flip=flip)
        if mode == "full":
            return full_padding(m, dilation)
        raise CnnlabError(f"padding={padding!r} is not one of {', '.join(PADDING_MODES)} or an int")
    if isinstance(padding, Sequence):
        if len(padding) != 2:
            raise CnnlabError(f"padding={tuple(padding)!r} must be one int or (before, after)")
        return (
            _check_int("padding", padding[0], 0, f" for input of length {n}"),
            _check_int("padding", padding[1], 0, f" for input of length {n}"),
        )
    p = _check_int("padding", padding, 0, f" for input of length {n}")
    return (p, p)


def pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; anything else raises naming ``name``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise CnnlabError(f"{name}={tuple(value)!r} must be one int or a pair of ints")
        return (value[0], value[1])
    return (value, value)  # type: ignore[return-value]
