"""``cnnlab viz ...`` (one PNG per picture) and ``cnnlab report`` (one HTML page).

Heavy imports (matplotlib, torch) happen inside the handlers so ``cnnlab --help`` stays fast.
"""

from __future__ import annotations

import argparse

from cnnlab.cli._literals import allow_negative_literals

RUN_HELP = "run folder (runs/<name>/version_N) or checkpoint file (.pt)"
IMAGE_HELP = (
    "image file, 'china' / 'flower' (scikit-learn sample photos) or test:N "
    "(test image N of the run's dataset)"
)


def _out(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--out", default=default, help=f"PNG file to write (default {default})")


def _run_args(parser: argparse.ArgumentParser, image: bool = True) -> None:
    parser.add_argument("run", metavar="RUN", help=RUN_HELP)
    if image:
        parser.add_argument("image", metavar="IMAGE", help=IMAGE_HELP)
    parser.add_argument(
        "--which", choices=("best", "last"), default="best", help="checkpoint of a run folder"
    )


def _save(fig, out: str) -> int:
    from cnnlab.viz._grid import save_figure

    path = save_figure(fig, out)
    print(f"wrote {path}")
    return 0


def _conv(args: argparse.Namespace) -> int:
    from cnnlab.ops.filters import parse_kernel, parse_matrix
    from cnnlab.viz import conv

    x = parse_matrix(args.input, "input") if args.input else conv.NOTEBOOK_X
    w = parse_kernel(args.kernel) if args.kernel else conv.NOTEBOOK_W
    stride = _int_or_pair(args.stride, "--stride")
    flip = not args.correlate
    if args.padding == "all":
        fig = conv.plot_conv_modes(x, w, stride=stride, flip=flip)
    else:
        padding = (
            args.padding if args.padding in conv.MODES else _int_or_pair(args.padding, "--padding")
        )
        fig = conv.plot_conv_steps(x, w, padding=padding, stride=stride, flip=flip)
    return _save(fig, args.out)


def _int_or_pair(text: str, what: str):
    from cnnlab.viz._grid import parse_ints

    values = parse_ints(text, what)
    if len(values) not in (1, 2):
        from cnnlab.errors import CnnlabError

        raise CnnlabError(f"{what} must be one int or two (rows,cols), got {text!r}")
    return values[0] if len(values) == 1 else values


def _filter(args: argparse.Namespace) -> int:
    from cnnlab.viz.filters import plot_filter_grid

    fig = plot_filter_grid(
        args.image, args.kernels, crop=args.crop, boundary=args.boundary, scale=args.scale
    )
    return _save(fig, args.out)


def _pool(args: argparse.Namespace) -> int:
    from cnnlab.viz.pooling import plot_pooling

    fig = plot_pooling(args.image, size=args.size, crop=args.crop)
    return _save(fig, args.out)


def _filters(args: argparse.Namespace) -> int:
    from cnnlab.viz.filters import plot_learned_filters

    fig = plot_learned_filters(args.run, layer=args.layer, which=args.which)
    return _save(fig, args.out)


def _features(args: argparse.Namespace) -> int:
    from cnnlab.viz.features import plot_feature_maps

    fig = plot_feature_maps(args.run, args.image, max_channels=args.max_channels, which=args.which)
    return _save(fig, args.out)


def _receptive(args: argparse.Namespace) -> int:
    from cnnlab.viz.receptive import plot_receptive_field

    unit = _int_or_pair(args.unit, "--unit") if args.unit else None
    if isinstance(unit, int):
        unit = (unit, unit)
    fig = plot_receptive_field(args.run, args.image, layer=args.layer, unit=unit, which=args.which)
    return _save(fig, args.out)


def _saliency(args: argparse.Namespace) -> int:
    from cnnlab.viz.saliency import plot_saliency

    fig = plot_saliency(args.run, args.image, target=args.target, which=args.which)
    return _save(fig, args.out)


def _invariance(args: argparse.Namespace) -> int:
    from cnnlab.viz.invariance import plot_invariance

    fig = plot_invariance(
        args.run, args.image, max_shift=args.max_shift, vs=args.vs, which=args.which
    )
    return _save(fig, args.out)


def _activations(args: argparse.Namespace) -> int:
    from cnnlab.viz.activations import plot_activations

    fig = plot_activations()
    return _save(fig, args.out)


def _samples(args: argparse.Namespace) -> int:
    from cnnlab.viz.samples import plot_samples

    fig = plot_samples(
        args.dataset, count=args.count, split=args.split, data_dir=args.data_dir, seed=args.seed
    )
    return _save(fig, args.out)


def _curves(args: argparse.Namespace) -> int:
    from cnnlab.run import load

    return _save(load(args.run, which="last").plot_curves(), _png(args.out))


def _confusion(args: argparse.Namespace) -> int:
    from cnnlab.run import load

    run = load(args.run, which=args.which)
    ev = run.evaluate(data_dir=args.data_dir, limit=args.limit_test)
    return _save(run.plot_confusion(ev), _png(args.out))


def _png(out: str) -> str:
    from cnnlab.errors import CnnlabError

    if not out.lower().endswith(".png"):
        raise CnnlabError(f"output must be a .png file, got {out!r}")
    return out


def _report(args: argparse.Namespace) -> int:
    from cnnlab.report import write_report

    path = write_report(
        args.run,
        image=args.image,
        out=args.out,
        which=args.which,
        data_dir=args.data_dir,
        limit_test=args.limit_test,
    )
    print(f"wrote {path}")
    return 0


def _register_viz(sub) -> None:
    p = sub.add_parser("conv", help="a kernel sliding over a padded input (notebook 000 2.1-2.2)")
    p.add_argument("--input", help="input matrix, rows separated by ';' (e.g. '1,3,2;5,6,1')")
    p.add_argument("--kernel", help="kernel matrix like --input, or a named kernel (sobel-x)")
    p.add_argument(
        "--padding",
        default="all",
        help="all (full/same/valid side by side), full, same, valid, P or P1,P2",
    )
    p.add_argument("--stride", default="1", help="S or S1,S2 (default 1)")
    p.add_argument("--correlate", action="store_true", help="cross-correlation (no kernel flip)")
    _out(p, "conv.png")
    allow_negative_literals(p)
    p.set_defaults(func=_conv)

    p = sub.add_parser("filter", help="an image and its filtered versions (notebooks 000, 004)")
    p.add_argument("image", metavar="IMAGE", help="image file or china / flower")
    p.add_argument(
        "--kernels",
        default="sharpen,edge,sobel-x,sobel-y,vline,hline",
        help="comma-separated kernel names from the ops catalogue",
    )
    p.add_argument("--crop", help="top,bottom,left,right pixel box to zoom into (notebook 004)")
    p.add_argument(
        "--boundary",
        default="zero",
        choices=("zero", "valid", "replicate"),
        help="zero padding (same size), valid (crop) or replicate the border pixels",
    )
    p.add_argument(
        "--scale",
        default="auto",
        choices=("auto", "clip", "abs", "minmax", "clahe"),
        help="how outputs are mapped to gray (auto: by what the kernel sums to)",
    )
    _out(p, "filter.png")
    p.set_defaults(func=_filter)

    p = sub.add_parser(
        "pool", help="max vs average vs depth-wise pooling of a photo (notebook 004)"
    )
    p.add_argument("image", metavar="IMAGE", help="image file or china / flower")
    p.add_argument("--size", type=int, default=2, help="pooling window and stride (default 2)")
    p.add_argument("--crop", help="top,bottom,left,right pixel box (default: notebook 004's crop)")
    _out(p, "pool.png")
    p.set_defaults(func=_pool)

    p = sub.add_parser("filters", help="the learned kernels of a conv layer as a grid")
    _run_args(p, image=False)
    p.add_argument("--layer", help="conv layer name (default: the first conv layer)")
    _out(p, "filters.png")
    p.set_defaults(func=_filters)

    p = sub.add_parser("features", help="feature maps of every conv/pool layer, one row each")
    _run_args(p)
    p.add_argument("--max-channels", type=int, default=8, help="channels shown per layer")
    _out(p, "features.png")
    p.set_defaults(func=_features)

    p = sub.add_parser("receptive-field", help="theoretical and effective receptive field")
    _run_args(p)
    p.add_argument("--layer", help="layer name (default: the last conv layer)")
    p.add_argument("--unit", help="output unit i,j (default: the centre unit)")
    _out(p, "receptive_field.png")
    p.set_defaults(func=_receptive)

    p = sub.add_parser("saliency", help="input-gradient saliency and Grad-CAM")
    _run_args(p)
    p.add_argument("--target", help="class index or name to explain (default: the prediction)")
    _out(p, "saliency.png")
    p.set_defaults(func=_saliency)

    p = sub.add_parser("invariance", help="class probability under shifts of -k..k pixels")
    _run_args(p)
    p.add_argument("--max-shift", type=int, default=6, help="largest shift k in pixels")
    p.add_argument("--vs", metavar="RUN2", help="a second run (e.g. the MLP) to compare with")
    _out(p, "invariance.png")
    p.set_defaults(func=_invariance)

    p = sub.add_parser("activations", help="ReLU, sigmoid, tanh and softmax (notebook 000)")
    _out(p, "activations.png")
    p.set_defaults(func=_activations)

    p = sub.add_parser("samples", help="a grid of dataset images with their labels")
    p.add_argument("--dataset", default="mnist", help="mnist, fashion-mnist or digits")
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--count", type=int, default=32, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="which random images")
    p.add_argument("--data-dir", help="folder holding the dataset (default: the usual places)")
    _out(p, "samples.png")
    p.set_defaults(func=_samples)

    p = sub.add_parser("curves", help="loss and accuracy curves of a run")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    _out(p, "curves.png")
    p.set_defaults(func=_curves)

    p = sub.add_parser("confusion", help="confusion matrix of a run on its test split")
    _run_args(p, image=False)
    p.add_argument("--data-dir", help="folder holding the dataset (default: the usual places)")
    p.add_argument("--limit-test", type=int, help="evaluate on the first N test images only")
    _out(p, "confusion.png")
    p.set_defaults(func=_confusion)


def register(subparsers) -> None:
    """Add ``viz`` (with its picture sub-commands) and ``report``."""
    viz = subparsers.add_parser("viz", help="pictures of convolution, filters and trained models")
    sub = viz.add_subparsers(dest="picture", metavar="PICTURE", parser_class=type(viz))
    sub.required = True
    _register_viz(sub)

    p = subparsers.add_parser("report", help="one self-contained HTML page about a run")
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--image", help=IMAGE_HELP + " (default: test:0)")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--which", choices=("best", "last"), default="best")
    p.add_argument("--data-dir", help="folder holding the dataset (default: the usual places)")
    p.add_argument("--limit-test", type=int, help="evaluate on the first N test images only")
    p.set_defaults(func=_report)
