"""``cnnlab datasets`` (what is installed where) and ``cnnlab show-data`` (a labelled grid)."""

from __future__ import annotations

import argparse
import json
import math

MAX_GRID = 400  # a 20x20 grid; more is unreadable and slow to draw


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "datasets",
        help="list datasets, where each was found and whether its checksums match",
        description="List the registered datasets, the folder each was found in (or every "
        "place looked), file sizes and checksum status. Never downloads.",
    )
    p.add_argument("--data-dir", help="a folder holding mnist/ and fashion-mnist/ (searched first)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip checksum verification")
    p.set_defaults(func=cmd_datasets)

    p = subparsers.add_parser(
        "show-data",
        help="draw a labelled grid of dataset images to a PNG",
        description="Draw the first N images of a dataset split (or of an image folder) with "
        "their labels (class names for Fashion-MNIST) into a PNG.",
    )
    p.add_argument("dataset", help="mnist, fashion-mnist, digits, or a folder of class sub-folders")
    p.add_argument("--n", type=int, default=25, help="number of images (default 25)")
    p.add_argument("--out", default="grid.png", help="output PNG (default grid.png)")
    p.add_argument("--split", choices=("train", "test"), default="train")
    p.add_argument("--data-dir", help="a folder holding <dataset>/ (searched first)")
    p.add_argument("--seed", type=int, default=None, help="pick random images with this seed")
    p.add_argument("--no-download", action="store_true", help="never download missing files")
    p.set_defaults(func=cmd_show_data)


def _human_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n else "-"


def format_status(status: dict) -> list[str]:
    """Human lines for one ``dataset_status`` result."""
    name = status["name"]
    samples = ", ".join(f"{k} {v:,}" for k, v in status["sizes"].items())
    if status["origin"] == "built in":
        return [f"{name:<14} built in (scikit-learn)  {samples}  checksums n/a"]
    if not status["found"]:
        looked = "; ".join(f"{e['origin']} {e['folder']}: {e['reason']}" for e in status["looked"])
        return [f"{name:<14} NOT FOUND (looked in {looked})"]
    lines = [
        f"{name:<14} {status['origin']} {status['folder']}  {samples}  "
        f"{_human_bytes(status['bytes'])}  checksums {status['checksums']}"
    ]
    for f in status["files"]:
        check = f.get("detail", "not checked")
        lines.append(f"    {f['name']:<28} {f['bytes']:>12,} bytes  {check}")
    return lines


def cmd_datasets(args: argparse.Namespace) -> int:
    from cnnlab.data import DATASETS
    from cnnlab.data.locate import dataset_status

    statuses = [dataset_status(n, args.data_dir, not args.no_verify) for n in DATASETS]
    if args.json:
        print(json.dumps(statuses, indent=2))
    else:
        for status in statuses:
            print("\n".join(format_status(status)))
    bad = any(s["checksums"] == "BAD" for s in statuses)
    return 1 if bad else 0


def _pick(n_total: int, n: int, seed: int | None):
    import numpy as np

    if seed is None:
        return np.arange(min(n, n_total))
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


def cmd_show_data(args: argparse.Namespace) -> int:
    import sys
    import warnings
    from pathlib import Path

    from cnnlab.errors import CnnlabError

    if not 1 <= args.n <= MAX_GRID:
        raise CnnlabError(f"--n {args.n}: draw between 1 and {MAX_GRID} images")
    from cnnlab.data import DATASETS, load_dataset, load_image_folder

    is_folder = args.dataset not in DATASETS and Path(args.dataset).is_dir()
    if is_folder:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = load_image_folder(args.dataset, input_size=28, channels=1, skip_bad=True)
        for w in caught:
            sys.stderr.write(f"cnnlab: warning: {w.message}\n")
    else:
        ds = load_dataset(args.dataset, args.split, args.data_dir, not args.no_download)
    idx = _pick(len(ds), args.n, args.seed)
    png = draw_grid(ds.images[idx].numpy(), [ds.classes[int(y)] for y in ds.labels[idx]])
    from cnnlab.fileio import atomic_write_bytes

    out = atomic_write_bytes(args.out, png)
    what = f"images from {args.dataset}" if is_folder else f"{ds.name} {args.split} images"
    print(f"wrote {out} ({len(idx)} {what})")
    return 0


def mosaic(images, cols: int, gap: int, band: int):
    """Tile uint8 (N, C, H, W) images into one (rows*(band+h+gap), cols*(w+gap), C) array."""
    import numpy as np

    n, c, h, w = images.shape
    rows = math.ceil(n / cols)
    cell_h, cell_w = band + h + gap, w + gap
    out = np.full((rows * cell_h, cols * cell_w, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        top, left = r * cell_h + band, k * cell_w + gap // 2
        out[top : top + h, left : left + w] = img.transpose(1, 2, 0)
    return out


def draw_grid(images, titles: list[str]) -> bytes:
    """PNG bytes of a labelled grid of uint8 images (N, C, H, W) drawn with matplotlib (Agg).

    One Axes showing a mosaic plus one text per tile: drawing 25 separate Axes is ~10x slower.
    """
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    gap, band = max(2, w // 7), max(6, h // 3)  # white space between tiles, room for a title
    tiles = mosaic(images, cols, gap, band)
    fig = Figure(figsize=(1.3 * cols, 1.45 * rows), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(
        tiles[:, :, 0] if c == 1 else tiles, cmap="gray", vmin=0, vmax=255, interpolation="nearest"
    )
    ax.axis("off")
    for i, title in enumerate(titles):
        r, k = divmod(i, cols)
        x = k * (w + gap) + gap / 2 + w / 2 - 0.5
        y = r * (band + h + gap) + band - 1.5
        ax.text(x, y, title, ha="center", va="bottom", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
