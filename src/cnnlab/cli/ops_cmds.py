"""CLI for the convolution math: conv1d, conv2d, outsize, filter, pool.

Numbers come as literals: a vector ``1,3,2,4`` or a matrix ``"1,2;3,4"`` (rows split by ';').
Negative literals work without ``--``: ``cnnlab conv1d -1,2,3 --kernel 1,-1``.
"""

from __future__ import annotations

import argparse

import numpy as np

from cnnlab.cli._literals import allow_negative_literals
from cnnlab.errors import CnnlabError

# the choices of cnnlab.ops.boundary / cnnlab.ops.filters, repeated so --help imports no SciPy
PADDING_MODES = ("zeros", "constant", "reflect", "replicate", "symmetric", "circular")
BOUNDARIES = (
    "zero",
    "valid",
    "replicate",
    "reflect",
    "symmetric",
    "circular",
    "constant",
)


def format_array(arr: np.ndarray) -> str:
    """``[5 14 16]`` for vectors, aligned rows for matrices; integers printed without '.0'."""
    a = np.asarray(arr)
    if np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)) and np.all(abs(a) < 1e15):
        a = a.astype(np.int64)
    cells = [f"{v:d}" if a.dtype.kind == "i" else f"{v:.6g}" for v in a.ravel()]
    if a.ndim == 1:
        return "[" + " ".join(cells) + "]"
    width = max(len(c) for c in cells)
    rows = [
        " ".join(c.rjust(width) for c in cells[r * a.shape[1] : (r + 1) * a.shape[1]])
        for r in range(a.shape[0])
    ]
    return "[[" + "]\n [".join(rows) + "]]"


def _ints(text: str, name: str) -> int | tuple[int, int]:
    """ "2" -> 2, "1,2" -> (1, 2); anything else is a one-line error naming the option."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise CnnlabError(f"--{name} {text!r} is not an integer or a pair 'a,b'") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return (values[0], values[1])
    raise CnnlabError(f"--{name} {text!r} must be one integer or a pair 'a,b'")


def _padding(args) -> object:
    if args.mode and args.padding is not None:
        raise CnnlabError(f"give --mode {args.mode} or --padding {args.padding}, not both")
    if args.mode:
        return args.mode
    if args.padding is None:
        return "valid"
    if args.padding.lower() in ("valid", "same", "full"):
        return args.padding.lower()
    return _ints(args.padding, "padding")


def _conv_options(p: argparse.ArgumentParser, two_d: bool) -> None:
    p.add_argument(
        "--kernel",
        "-k",
        required=True,
        help="kernel literal"
        + (" ('0,-1,0;-1,5,-1;0,-1,0') or catalogue name" if two_d else " (1,0,3)"),
    )
    p.add_argument("--mode", choices=("valid", "same", "full"), help="padding mode")
    p.add_argument(
        "--padding", "-p", help="zeros per side: p" + (" or p1,p2" if two_d else " or before,after")
    )
    p.add_argument("--stride", "-s", default="1", help="stride s" + (" or s1,s2" if two_d else ""))
    p.add_argument(
        "--correlate",
        action="store_true",
        help="cross-correlate (no kernel flip), as deep-learning layers do",
    )
    p.add_argument("--method", choices=("auto", "direct", "fft"), default="auto")
    p.add_argument(
        "--dilation", "-d", default="1", help="dilation d" + (" or d1,d2" if two_d else "")
    )
    p.add_argument(
        "--padding-mode",
        choices=PADDING_MODES,
        default="zeros",
        help="what the padding holds (symmetric = SciPy's symm, circular = its wrap)",
    )
    p.add_argument(
        "--fillvalue", type=float, default=0.0, help="padding value for --padding-mode constant"
    )
    allow_negative_literals(p)


def cmd_conv1d(args) -> int:
    from cnnlab.ops import conv1d, correlate1d, parse_matrix

    x = parse_matrix(args.input, "input", keep_integers=True)
    w = parse_matrix(args.kernel, "kernel", keep_integers=True)
    if x.shape[0] != 1 or w.shape[0] != 1:
        raise CnnlabError("conv1d takes vectors like 1,2,3 (use conv2d for matrices)")
    padding = _padding(args)
    if isinstance(padding, int | tuple):
        padding = padding if isinstance(padding, int) else tuple(padding)
    stride, dilation = _ints(args.stride, "stride"), _ints(args.dilation, "dilation")
    for name, value in (("stride", stride), ("dilation", dilation)):
        if not isinstance(value, int):
            raise CnnlabError(f"--{name} {getattr(args, name)!r} must be one integer for conv1d")
    fn = correlate1d if args.correlate else conv1d
    out = fn(x[0], w[0], padding, stride, dilation, method=args.method, **_boundary(args))
    print(format_array(out))
    return 0


def _boundary(args) -> dict:
    """padding_mode / fillvalue keywords; the fill is passed only when it is set."""
    kw = {"padding_mode": args.padding_mode}
    if args.fillvalue:
        kw["fillvalue"] = int(args.fillvalue) if args.fillvalue.is_integer() else args.fillvalue
    return kw


def cmd_conv2d(args) -> int:
    from cnnlab.ops import conv2d, correlate2d, parse_kernel, parse_matrix

    x = parse_matrix(args.input, "input", keep_integers=True)
    w = parse_kernel(args.kernel, keep_integers=True)
    fn = correlate2d if args.correlate else conv2d
    out = fn(
        x,
        w,
        _padding(args),
        _ints(args.stride, "stride"),
        _ints(args.dilation, "dilation"),
        method=args.method,
        **_boundary(args),
    )
    print(format_array(out))
    return 0


def cmd_outsize(args) -> int:
    from cnnlab.ops import output_size, resolve_padding

    n, m, s, d = args.n, args.m, args.stride, args.dilation
    spec = (
        args.padding
        if args.padding.lower() in ("valid", "same", "full")
        else _ints(args.padding, "padding")
    )
    if isinstance(spec, tuple):
        raise CnnlabError(f"--padding {args.padding!r}: give one integer or valid/same/full")
    before, after = resolve_padding(n, m, spec, s, d)
    out = output_size(n, m, (before, after), s, d)
    pad = f"2*{before}" if before == after else f"{before} + {after}"
    pads = "2p" if before == after else "p_before + p_after"
    if d == 1:
        formula, span = f"floor((n + {pads} - m) / s) + 1", f"{m}"
    else:
        formula, span = f"floor((n + {pads} - d(m - 1) - 1) / s) + 1", f"{d}*({m} - 1) - 1"
    print(f"o = {formula} = floor(({n} + {pad} - {span}) / {s}) + 1 = {out}")
    return 0


def cmd_filter(args) -> int:
    from cnnlab.ops import apply_kernel, list_kernels, parse_kernel, scale_for_display

    if args.list:
        for name, desc in list_kernels():
            k = parse_kernel(name)
            print(f"{name:<10} {k.shape[0]}x{k.shape[1]}  {desc}")
        return 0
    if not args.image or not args.out:
        raise CnnlabError("filter needs IMAGE and --out (or --list)")
    from cnnlab.images import load_named_image, save_image

    kernel = parse_kernel(args.kernel)
    img = load_named_image(args.image, gray=args.gray)
    out = apply_kernel(img, kernel, boundary=args.boundary, fillvalue=args.fillvalue)
    scale = "clahe" if args.equalize else args.scale
    shown = scale_for_display(out, scale, clip_limit=args.clip_limit)
    path = save_image(args.out, shown)
    print(
        f"{path}: {args.image} {_shape(img)} * {args.kernel} ({kernel.shape[0]}x"
        f"{kernel.shape[1]}), boundary {args.boundary}, scale {scale} -> {_shape(shown)}; "
        f"raw range [{out.min():.4g}, {out.max():.4g}]"
    )
    return 0


def _shape(a: np.ndarray) -> str:
    return "x".join(str(v) for v in a.shape)


def cmd_pool(args) -> int:
    from cnnlab.images import load_named_image, save_image
    from cnnlab.ops import avg_pool2d, depth_pool, max_pool2d

    img = load_named_image(args.image, gray=args.gray)
    stride = None if args.stride is None else _ints(args.stride, "stride")
    if args.kind == "depth":
        if args.padding != "0" or args.ceil_mode:
            raise CnnlabError("--padding and --ceil-mode apply to max and avg pooling only")
        if img.ndim != 3:
            raise CnnlabError(f"depth pooling needs a colour image; {args.image} is gray")
        out = depth_pool(img, args.size, stride, axis=-1, kind="max")
        out = out[..., 0] if out.shape[-1] == 1 else out
    else:
        pool = max_pool2d if args.kind == "max" else avg_pool2d
        chw = img if img.ndim == 2 else np.moveaxis(img, -1, 0)
        padding = _ints(args.padding, "padding")
        out = pool(chw, args.size, stride, padding, ceil_mode=args.ceil_mode)
        out = out if img.ndim == 2 else np.moveaxis(out, 0, -1)
    if out.ndim == 3 and out.shape[-1] not in (1, 3, 4):
        out = out.mean(axis=-1)  # e.g. 2 pooled channels: show their mean
    path = save_image(args.out, out)
    print(
        f"{path}: {args.image} {_shape(img)} {args.kind}-pooled (size {args.size}, "
        f"stride {args.stride or args.size}) -> {_shape(out)}"
    )
    return 0


def register(subparsers) -> None:
    """Add conv1d, conv2d, outsize, filter and pool to the ``cnnlab`` parser."""
    p = subparsers.add_parser("conv1d", help="1-D convolution of a vector literal")
    p.add_argument("input", help="vector literal, e.g. 1,3,2,4,5,6,1,3")
    _conv_options(p, two_d=False)
    p.set_defaults(func=cmd_conv1d)

    p = subparsers.add_parser("conv2d", help="2-D convolution of a matrix literal")
    p.add_argument("input", help="matrix literal, e.g. '1,2;3,4'")
    _conv_options(p, two_d=True)
    p.set_defaults(func=cmd_conv2d)

    p = subparsers.add_parser("outsize", help="convolution output size, formula filled in")
    p.add_argument("n", type=int, help="input length")
    p.add_argument("m", type=int, help="kernel length")
    p.add_argument("--padding", "-p", default="0", help="p, or valid/same/full")
    p.add_argument("--stride", "-s", type=int, default=1)
    p.add_argument("--dilation", "-d", type=int, default=1)
    p.set_defaults(func=cmd_outsize)

    p = subparsers.add_parser("filter", help="filter an image with a kernel and save a PNG")
    p.add_argument("image", nargs="?", help="image path, or china / flower")
    p.add_argument(
        "--kernel",
        "-k",
        default="sharpen",
        help="catalogue name (see --list), literal '0,-1,0;-1,5,-1;0,-1,0' or file",
    )
    p.add_argument("--out", "-o", help="output PNG path")
    p.add_argument("--list", action="store_true", help="list the kernel catalogue")
    p.add_argument("--gray", action="store_true", help="convert to grayscale first")
    p.add_argument(
        "--boundary",
        choices=BOUNDARIES,
        default="zero",
        help="what lies beyond the image: zeros, crop (valid), the border pixel extended "
        "(replicate), a mirror (reflect, symmetric), wrap-around (circular) or --fillvalue "
        "(constant)",
    )
    p.add_argument(
        "--fillvalue", type=float, default=0.0, help="value beyond the border for constant"
    )
    p.add_argument(
        "--scale",
        choices=("clip", "abs", "minmax", "clahe"),
        default="clip",
        help="how to map the result to [0, 1] for saving",
    )
    p.add_argument("--equalize", action="store_true", help="same as --scale clahe")
    p.add_argument("--clip-limit", type=float, default=0.03, help="CLAHE clip limit")
    allow_negative_literals(p)
    p.set_defaults(func=cmd_filter)

    p = subparsers.add_parser("pool", help="max / average / depth-wise pooling of an image")
    p.add_argument("image", help="image path, or china / flower")
    p.add_argument("--kind", choices=("max", "avg", "depth"), default="max")
    p.add_argument("--size", type=int, default=2, help="pool size (channels for depth)")
    p.add_argument("--stride", help="default = size")
    p.add_argument("--padding", "-p", default="0", help="p or p1,p2, at most half the size")
    p.add_argument(
        "--ceil-mode", action="store_true", help="keep a last partial window, as torch does"
    )
    p.add_argument("--gray", action="store_true", help="convert to grayscale first")
    p.add_argument("--out", "-o", required=True, help="output PNG path")
    p.set_defaults(func=cmd_pool)
