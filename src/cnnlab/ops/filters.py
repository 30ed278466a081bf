"""Image filters: a named kernel catalogue, kernel parsing, filtering and display scaling.

Filtering is TRUE convolution (``scipy.signal.convolve2d``, as notebook 000 does). The
boundary says what lies beyond the image: ``zero`` (zeros, output the input's size), ``valid``
(crop: only positions where the kernel fits), ``replicate`` (extend the border pixels
outwards: the "extension" boundary of notebook 001), ``reflect`` (mirror without repeating
the border pixel), ``symmetric`` (mirror repeating it: SciPy's ``boundary="symm"``),
``circular`` (wrap around: SciPy's ``"wrap"``) or ``constant`` (``fillvalue``: SciPy's
``"fill"``). Every boundary but ``valid`` keeps the image size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.ops.clahe import clahe
from cnnlab.ops.conv import as_real_array, conv2d

BOUNDARIES = ("zero", "valid", "replicate", "reflect", "symmetric", "circular", "constant")
SCALES = ("clip", "abs", "minmax", "clahe")
COLOR_MODES = ("channels", "gray")
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as cnnlab.images uses


def _odd(size: float, name: str) -> int:
    if size != int(size) or int(size) < 1 or int(size) % 2 == 0:
        raise CnnlabError(f"{name} size {size:g} must be a positive odd integer")
    return int(size)


def _line(size: float = 7, *, vertical: bool) -> np.ndarray:
    n = _odd(size, "vline" if vertical else "hline")
    k = np.zeros((n, n))
    if vertical:
        k[:, n // 2] = 1.0
    else:
        k[n // 2, :] = 1.0
    return k


def _box(size: float = 3) -> np.ndarray:
    n = _odd(size, "box")
    return np.full((n, n), 1.0 / (n * n))


def gaussian_kernel(size: float = 5, sigma: float = 1.0) -> np.ndarray:
    """Normalised (sum 1) ``size x size`` Gaussian with standard deviation ``sigma`` pixels.

    >>> round(float(gaussian_kernel(5, 1.0).sum()), 12)
    1.0
    """
    n = _odd(size, "gaussian")
    if not sigma > 0:
        raise CnnlabError(f"gaussian sigma={sigma:g} must be > 0")
    r = np.arange(n) - n // 2
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def _fixed(rows) -> Callable[[], np.ndarray]:
    return lambda: np.array(rows, dtype=np.float64)


# name -> (builder(*numbers), one-line description). Builders take the ":"-separated numbers.
KERNELS: dict[str, tuple[Callable[..., np.ndarray], str]] = {
    "identity": (_fixed([[0, 0, 0], [0, 1, 0], [0, 0, 0]]), "leaves the image unchanged"),
    "sharpen": (_fixed([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]), "notebook 000 sharpen"),
    "edge": (_fixed([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]), "8-neighbour Laplacian"),
    "box": (_box, "box blur, box:SIZE (odd, default 3)"),
    "gaussian": (gaussian_kernel, "Gaussian blur, gaussian:SIZE:SIGMA (default 5:1.0)"),
    "sobel-x": (_fixed([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]), "Sobel, responds to vertical edges"),
    "sobel-y": (_fixed([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]), "Sobel, horizontal edges"),
    "prewitt-x": (_fixed([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]), "Prewitt, vertical edges"),
    "prewitt-y": (_fixed([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]), "Prewitt, horizontal edges"),
    "emboss": (_fixed([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]), "relief effect"),
    "hline": (lambda size=7: _line(size, vertical=False), "horizontal line, hline:SIZE (odd, 7)"),
    "vline": (lambda size=7: _line(size, vertical=True), "vertical line, vline:SIZE (odd, 7)"),
    "edge10": (
        _fixed([[10, 10, 10], [0, 0, 0], [-10, -10, -10]]),
        "notebook 003 horizontal-edge filter",
    ),
}


def list_kernels() -> list[tuple[str, str]]:
    """``[(name, description), ...]`` of the catalogue, in a stable order."""
    return [(name, desc) for name, (_, desc) in KERNELS.items()]


def _number(text: str, spec: str, what: str = "kernel") -> float:
    try:
        value = float(text)
    except ValueError:
        raise CnnlabError(f"{what} {spec!r}: {text.strip()!r} is not a number") from None
    if not np.isfinite(value):
        raise CnnlabError(f"{what} {spec!r}: {text.strip()!r} is not a finite number")
    return value


def _integer(text: str) -> int | None:
    """``"-12"`` -> -12; anything that is not a plain integer literal -> None."""
    try:
        return int(text)
    except ValueError:
        return None


def parse_matrix(spec: str, what: str = "kernel", *, keep_integers: bool = False) -> np.ndarray:
    """``"0,-1,0;-1,5,-1;0,-1,0"`` -> 2-D array (rows split by ';', values by ',').

    The result is float64, or with ``keep_integers=True`` and only integer literals, int64
    holding them exactly (so integer convolution stays exact beyond ``2**53``).

    >>> parse_matrix("1,2;3,4").dtype.name, parse_matrix("1,2", keep_integers=True).dtype.name
    ('float64', 'int64')
    """
    rows = [r for r in spec.strip().strip("[]").split(";")]
    tokens = [[v for v in row.replace(" ", ",").split(",") if v.strip()] for row in rows]
    values = [[_number(v, spec, what) for v in row] for row in tokens]
    if not values or any(len(r) == 0 for r in values):
        raise CnnlabError(f"{what} {spec!r} has an empty row")
    if len({len(r) for r in values}) != 1:
        lengths = [len(r) for r in values]
        raise CnnlabError(f"{what} {spec!r} has rows of different lengths {lengths}")
    if keep_integers:
        ints = [[_integer(v) for v in row] for row in tokens]
        if all(v is not None for row in ints for v in row):
            big = [v for row in ints for v in row if not -(2**63) <= v < 2**63]
            if big:
                raise CnnlabError(f"{what} {spec!r}: {big[0]} does not fit in int64")
            return np.array(ints, dtype=np.int64)
    return np.array(values, dtype=np.float64)


def _load_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CnnlabError(f"kernel file not found: {path}")
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            text = path.read_text()
            arr = np.loadtxt(path, delimiter="," if "," in text else None, ndmin=2)
    except (ValueError, OSError) as exc:
        raise CnnlabError(f"kernel file {path} is unreadable: {exc}") from None
    arr = np.atleast_2d(arr)
    return as_real_array(arr, f"kernel file {path}", 2).astype(np.float64)


def parse_kernel(spec, *, keep_integers: bool = False) -> np.ndarray:
    """A kernel from a catalogue name, a matrix literal, a .npy/.txt/.csv file, or an array.

    Names take ``:``-separated numbers: ``"gaussian:5:1.0"``, ``"vline:7"``, ``"box:5"``.
    ``keep_integers`` applies to literals, as in :func:`parse_matrix`.

    >>> parse_kernel("0,-1,0;-1,5,-1;0,-1,0").tolist() == parse_kernel("sharpen").tolist()
    True
    >>> parse_kernel("vline:3").tolist()
    [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    """
    if not isinstance(spec, str | os.PathLike):
        return as_real_array(spec, "kernel", 2).astype(np.float64)
    text = os.fspath(spec).strip()
    if not text:
        raise CnnlabError("kernel spec is empty")
    lower = text.lower()
    if lower.endswith((".npy", ".txt", ".csv")) or os.sep in text:
        return _load_file(Path(text))
    name, *args = lower.replace("_", "-").split(":")
    if name in KERNELS:
        builder, _ = KERNELS[name]
        numbers = [_number(a, text) for a in args]
        try:
            kernel = builder(*numbers)
        except TypeError:
            raise CnnlabError(f"kernel {text!r}: too many ':' arguments for {name}") from None
        return kernel
    if "," in text or ";" in text or text.lstrip("+-").replace(".", "", 1).isdigit():
        return parse_matrix(text, keep_integers=keep_integers)
    names = ", ".join(KERNELS)
    raise CnnlabError(f"unknown kernel {spec!r}; known kernels: {names} (or a literal/file)")


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) -> (H, W) luma; (H, W) unchanged."""
    img = np.asarray(image, dtype=np.float64)
    return img[..., :3] @ LUMA if img.ndim == 3 else img


def _filter_plane(plane: np.ndarray, kernel: np.ndarray, boundary: str, fill: float):
    if boundary == "valid":
        return conv2d(plane, kernel, "valid")
    mode = "zeros" if boundary == "zero" else boundary
    return conv2d(plane, kernel, "same", padding_mode=mode, fillvalue=fill)


def apply_kernel(
    image, kernel, boundary: str = "zero", color: str = "channels", fillvalue: float = 0.0
) -> np.ndarray:
    """Convolve an image (H, W) or (H, W, C) with a kernel (spec or array).

    Args:
        image: float array, gray (H, W) or colour (H, W, C).
        kernel: anything :func:`parse_kernel` accepts.
        boundary: "zero", "valid", "replicate", "reflect", "symmetric", "circular" or
            "constant" (see module docstring).
        color: "channels" filters each channel; "gray" converts colour to luma first.
        fillvalue: the value beyond the border for ``boundary="constant"``.

    Returns:
        float64 filtered image, (H', W') or (H', W', C), unscaled (see :func:`scale_for_display`).

    >>> apply_kernel(np.ones((4, 4)), "box", boundary="replicate").tolist()[0]
    [1.0, 1.0, 1.0, 1.0]
    """
    if boundary not in BOUNDARIES:
        raise CnnlabError(f"boundary={boundary!r} is not one of {', '.join(BOUNDARIES)}")
    if fillvalue != 0 and boundary != "constant":
        raise CnnlabError(f"fillvalue={fillvalue:g} is only used with boundary='constant'")
    if color not in COLOR_MODES:
        raise CnnlabError(f"color={color!r} is not one of {', '.join(COLOR_MODES)}")
    k = parse_kernel(kernel)
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and color == "gray":
        img = to_gray(img)
    if img.ndim == 2:
        return _filter_plane(img, k, boundary, fillvalue)
    if img.ndim != 3:
        raise CnnlabError(f"image has shape {img.shape}; expected (H, W) or (H, W, C)")
    planes = [_filter_plane(img[..., c], k, boundary, fillvalue) for c in range(img.shape[2])]
    return np.stack(planes, -1)


def scale_for_display(
    image, method: str = "clip", *, clip_limit: float = 0.03, tiles: int = 8
) -> np.ndarray:
    """Map a filter output to [0, 1] for saving or showing.

    ``clip`` cuts to [0, 1]; ``abs`` takes |x| / max|x| (edge maps); ``minmax`` stretches
    min..max to 0..1; ``clahe`` min-max scales then applies :func:`~cnnlab.ops.clahe.clahe`
    per channel (``clip_limit`` 0.03 as in notebook 000).

    >>> scale_for_display(np.array([[-2.0, 0.0, 2.0]]), "minmax").tolist()
    [[0.0, 0.5, 1.0]]
    """
    img = np.asarray(image, dtype=np.float64)
    if method == "clip":
        return np.clip(img, 0.0, 1.0)
    if method == "abs":
        a = np.abs(img)
        top = a.max()
        return a / top if top > 0 else a
    if method == "minmax":
        lo, hi = img.min(), img.max()
        return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    if method == "clahe":
        if img.ndim == 2:
            return clahe(img, tiles=tiles, clip_limit=clip_limit)
        # each channel is equalised on its own (clahe min-max scales it first)
        return np.stack([clahe(img[..., c], tiles, clip_limit) for c in range(img.shape[-1])], -1)
    raise CnnlabError(f"scale={method!r} is not one of {', '.join(SCALES)}")
