"""The bad-input corpus: generators for every bad (and nasty-but-valid) input, with the outcome a
user should see. A test helper (loaded by ``test_corpus.py``); ``python _corpus.py`` prints the
table for README.md ("Reliability").

Each :class:`Case` writes its input files into a folder and returns the ``cnnlab`` command line
that reads them. ``error`` is a regular expression for the whole one-line message after
``cnnlab: error: `` (exit status 2), or ``None`` when the input is valid and the command must
succeed. Image cases also name the HTTP status ``POST /predict`` must answer for the same bytes.
Every command writes its outputs under ``out/``, which must hold nothing after a failure.
"""

from __future__ import annotations

import gzip
import io
import random
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
N_IMAGES = 6  # images in the generated IDX files


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # idx | image | ops | checkpoint | config | path
    what: str  # the input, in words (for the table)
    build: Callable[[Path, Path], list[str]]  # (folder, trained run) -> argv, files written
    error: str | None  # regex for the message; None: valid input, must work
    server: int | None = None  # HTTP status of POST /predict with the image bytes
    image: Callable[[], bytes] | None = None  # the image bytes (image cases)
    fsize: int | None = None  # run with RLIMIT_FSIZE at this many bytes: a full disk
    leaves: str = ""  # regex of new paths under out/ a failure may leave (complete files only)
    # run as a subprocess under an address-space limit and a timeout (inputs that could hang or
    # exhaust memory without the checks: devices, pipes, sizes from the file)
    isolate: bool = False


# ----------------------------------------------------------------------------- IDX files


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """An IDX file: magic 00 00 <code> <ndim>, big-endian uint32 dims, the data."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def good_idx(n: int = N_IMAGES) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    images = idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    labels = idx_bytes(np.arange(n, dtype=np.uint8) % 10)
    return {"train_images": images, "train_labels": labels, "test_images": images,
            "test_labels": labels}  # fmt: skip


def idx_case(name: str, what: str, error: str, **replace: bytes) -> Case:
    """Write a 4-file MNIST folder with some files replaced; read it with show-data."""

    def build(folder: Path, _run: Path) -> list[str]:
        files = {**good_idx(), **replace}
        (folder / "data" / "mnist").mkdir(parents=True)
        for role, data in files.items():
            (folder / "data" / "mnist" / MNIST_FILES[role]).write_bytes(data)
        return ["show-data", "mnist", "--split", "test", "--data-dir", "data", "--no-download",
                "--out", "out/grid.png"]  # fmt: skip

    return Case(name, "idx", what, build, error)


IMG = re.escape("data/mnist/t10k-images-idx3-ubyte")
LAB = re.escape("data/mnist/t10k-labels-idx1-ubyte")
_GOOD = good_idx()
_RANDOM = random.Random(9).randbytes(3000)
IDX_CASES = [
    idx_case("idx-empty", "empty images file (0 bytes)",
             f"{IMG}: truncated IDX file: 0 bytes, no 4-byte header", test_images=b""),
    idx_case("idx-header-cut", "images file cut inside its header (10 bytes)",
             f"{IMG}: truncated IDX file: header needs 16 bytes, got 10",
             test_images=_GOOD["test_images"][:10]),
    idx_case("idx-truncated", "images file cut in the middle of the pixels",
             f"{IMG}: truncated IDX file: header says 6x28x28 needing 4,704 bytes of data, "
             "found 2,336", test_images=_GOOD["test_images"][:2352]),
    idx_case("idx-garbled", "3,000 random bytes named like the images file",
             rf"{IMG}: not an IDX file \(magic 0x[0-9A-F]{{8}}, expected 0x00000801 or "
             r"0x00000803\)", test_images=b"\x12\x34" + _RANDOM),
    idx_case("idx-wrong-magic", "a labels file (magic 0x801) where images belong",
             f"{IMG}: expected an IDX file with 3 dimension\\(s\\), got 1",
             test_images=_GOOD["test_labels"]),
    idx_case("idx-dtype-code", "unknown dtype code 0x0A in the magic",
             f"{IMG}: unknown IDX dtype code 0x0A \\(known: .*\\)",
             test_images=b"\x00\x00\x0a\x03" + _GOOD["test_images"][4:]),
    idx_case("idx-float-images", "float32 pixels (dtype 0x0D) instead of uint8",
             f"{IMG}: expected uint8 images \\(code 0x08\\), got >f4",
             test_images=idx_bytes(np.zeros((N_IMAGES, 28, 28), ">f4"), 0x0D)),
    idx_case("idx-trailing", "100 extra bytes after the pixels",
             f"{IMG}: 100 unexpected bytes after the 6x28x28 IDX data",
             test_images=_GOOD["test_images"] + bytes(100)),
    idx_case("idx-count-mismatch", "6 images but 5 labels",
             f"{IMG} has 6 images but {LAB} has 5 labels",
             test_labels=idx_bytes(np.zeros(5, np.uint8))),
    idx_case("idx-label-200", "label 200 in a 10-class set",
             f"{LAB}: label 200 at index 3 is out of range 0..9",
             test_labels=idx_bytes(np.array([0, 1, 2, 200, 4, 5], np.uint8))),
    idx_case("idx-image-size", "20x20 images in an MNIST folder",
             f"{IMG}: images are 20x20, expected 28x28 for mnist",
             test_images=idx_bytes(np.zeros((N_IMAGES, 20, 20), np.uint8))),
    idx_case("idx-gzip-truncated", "a .gz-compressed images file cut in half",
             rf"{IMG}: truncated gzip stream \([\d,]+ bytes; file cut short\?\)",
             test_images=gzip.compress(_GOOD["test_images"])[:200]),
    idx_case("idx-gzip-garbled", "gzip magic followed by garbage",
             rf"{IMG}: corrupt gzip data \(.*\)",
             test_images=b"\x1f\x8b\x08\x00" + _RANDOM[:500]),
]  # fmt: skip


# ----------------------------------------------------------------------------- images


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def digit(size: int = 56, ink: int = 0, paper: int = 255) -> Image.Image:
    """A drawn '1': a dark vertical bar on light paper."""
    img = Image.new("L", (size, size), paper)
    img.paste(ink, (size // 2 - size // 16, size // 6, size // 2 + size // 16, size * 5 // 6))
    return img


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming ``width x height`` 8-bit gray pixels, with one zlib-compressed row
    of zeros as its data: a few hundred bytes that would decode to width*height bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(width + 1), 9)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))  # fmt: skip


def png_16bit() -> bytes:
    arr = (np.asarray(digit(), np.uint16) * 257).astype(np.uint16)
    return _png(Image.fromarray(arr))  # uint16 -> mode I;16


def png_rgba() -> bytes:
    """A black stroke on a fully transparent background (how drawing apps export)."""
    img = Image.new("RGBA", (56, 56), (0, 0, 0, 0))
    img.paste((0, 0, 0, 255), (25, 9, 31, 47))
    return _png(img)


def jpeg_cmyk() -> bytes:
    buf = io.BytesIO()
    digit().convert("RGB").convert("CMYK").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def gif_palette_transparent() -> bytes:
    img = digit().convert("P")
    buf = io.BytesIO()
    img.save(buf, format="GIF", transparency=255)
    return buf.getvalue()


def gif_animated() -> bytes:
    frames = [digit().convert("P"), digit(ink=128).convert("P"), Image.new("P", (56, 56))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


def jpeg_corrupt() -> bytes:
    """A real JPEG whose entropy-coded data is overwritten half-way and then cut short."""
    buf = io.BytesIO()
    digit(200).save(buf, format="JPEG", quality=90)
    data = bytearray(buf.getvalue())
    mid = len(data) // 2
    data[mid : mid + 64] = random.Random(3).randbytes(64)
    return bytes(data[: mid + 100])


def png_truncated() -> bytes:
    data = _png(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64), np.uint8)))
    return data[: len(data) // 2]


def tiff_float_nan() -> bytes:
    arr = np.zeros((28, 28), np.float32)
    arr[5, 5] = np.nan
    buf = io.BytesIO()
    Image.fromarray(arr, mode="F").save(buf, format="TIFF")
    return buf.getvalue()


def image_case(name, what, suffix, make, error, server) -> Case:
    def build(folder: Path, run: Path) -> list[str]:
        path = folder / f"input{suffix}"
        path.write_bytes(make())
        return ["predict", str(run), path.name, "--json", "--csv", "out/p.csv", "--show",
                "out/seen.png"]  # fmt: skip

    return Case(name, "image", what, build, error, server, make)


INPUT = "input"
IMAGE_CASES = [
    image_case("img-empty", "empty file named .png", ".png", lambda: b"",
               "empty file, not an image: input.png", 400),
    image_case("img-text-as-png", "a text file named .png", ".png",
               lambda: b"just some text, not a picture\n",
               "not a readable image: input.png", 400),
    image_case("img-truncated-png", "a PNG cut in half", ".png", png_truncated,
               r"corrupt or truncated image: input\.png \(.*\)", 400),
    image_case("img-corrupt-jpeg", "a JPEG with garbled, cut-short scan data", ".jpg",
               jpeg_corrupt, r"corrupt or truncated image: input\.jpg \(.*\)", 400),
    image_case("img-bomb", "a 30000x30000 PNG (900 Mpx decompression bomb, 1 KB on disk)",
               ".png", lambda: png_claiming(30000, 30000),
               r"image too large \(decompression bomb guard\): input\.png", 400),
    image_case("img-zero-width", "a PNG header claiming 0x28 pixels", ".png",
               lambda: png_claiming(0, 28), r"not a readable image: input\.png", 400),
    image_case("img-float-nan", "a float TIFF holding NaN", ".tif", tiff_float_nan,
               r"input\.tif: float image contains NaN or infinity", None),
    image_case("img-1x1", "a 1x1 white PNG (blank: nothing to classify)", ".png",
               lambda: _png(Image.new("L", (1, 1), 255)),
               r"input\.png: no digit found: the image is blank", 422),
    image_case("img-16bit", "a 16-bit grayscale PNG (valid)", ".png", png_16bit, None, 200),
    image_case("img-rgba", "an RGBA PNG, black stroke on transparent (valid: composited on "
               "white)", ".png", png_rgba, None, 200),
    image_case("img-cmyk-jpeg", "a CMYK JPEG (valid)", ".jpg", jpeg_cmyk, None, 200),
    image_case("img-gif-palette", "a palette GIF with transparency (valid for the CLI; the "
               "server takes PNG/JPEG/WebP only: 415)", ".gif", gif_palette_transparent, None,
               415),
    image_case("img-gif-animated", "an animated GIF, 3 frames (valid: first frame; server 415)",
               ".gif", gif_animated, None, 415),
]  # fmt: skip


def missing_image(folder: Path, run: Path) -> list[str]:
    return ["predict", str(run), "no-such.png", "--csv", "out/p.csv"]


# ----------------------------------------------------------------------------- ops


def ops(*argv: str) -> Callable[[Path, Path], list[str]]:
    return lambda folder, run: list(argv)


def filter_cmd(*extra: str) -> Callable[[Path, Path], list[str]]:
    def build(folder: Path, run: Path) -> list[str]:
        (folder / "in.png").write_bytes(_png(digit()))
        return ["filter", "in.png", "--out", "out/f.png", *extra]

    return build


OPS_CASES = [
    Case("ops-nan-kernel", "ops", "NaN in a kernel literal",
         ops("conv2d", "1,2,3;4,5,6;7,8,9", "--kernel", "1,nan;0,1"),
         "kernel '1,nan;0,1': 'nan' is not a finite number"),
    Case("ops-inf-kernel", "ops", "inf in a kernel literal",
         ops("conv2d", "1,2,3;4,5,6;7,8,9", "--kernel", "1,0;-inf,1"),
         "kernel '1,0;-inf,1': '-inf' is not a finite number"),
    Case("ops-nan-input", "ops", "NaN in an input literal",
         ops("conv1d", "1,NaN,3", "--kernel", "1,1"),
         "input '1,NaN,3': 'NaN' is not a finite number"),
    Case("ops-word-literal", "ops", "a word in a matrix literal",
         ops("conv2d", "1,2;x,4", "--kernel", "1"), "input '1,2;x,4': 'x' is not a number"),
    Case("ops-ragged", "ops", "rows of different lengths",
         ops("conv2d", "1,2,3;4,5", "--kernel", "1"),
         r"input '1,2,3;4,5' has rows of different lengths \[3, 2\]"),
    Case("ops-even-same", "ops", "an even 2x2 kernel with 'same' (valid: scipy's convention)",
         ops("conv2d", "1,2,3;4,5,6;7,8,9", "--kernel", "1,2;3,4", "--mode", "same"), None),
    Case("ops-even-named", "ops", "an even size for a named odd kernel (box:4)",
         filter_cmd("--kernel", "box:4"), "box size 4 must be a positive odd integer"),
    Case("ops-stride-0", "ops", "stride 0",
         ops("conv2d", "1,2,3;4,5,6;7,8,9", "--kernel", "1,0;0,1", "--stride", "0"),
         r"stride=0 must be >= 1 for input of length 3"),
    Case("ops-stride-negative", "ops", "stride -2",
         ops("conv1d", "1,2,3,4", "--kernel", "1,1", "--stride", "-2"),
         r"stride=-2 must be >= 1 for input of length 4"),
    Case("ops-outsize-stride-0", "ops", "outsize with stride 0",
         ops("outsize", "10", "3", "--stride", "0"), r"stride=0 .*"),
    Case("ops-kernel-too-big", "ops", "a 4x4 kernel on a 3x3 input, 'valid', stride 2",
         ops("conv2d", "1,2,3;4,5,6;7,8,9", "--kernel", "1,1,1,1;1,1,1,1;1,1,1,1;1,1,1,1",
             "--mode", "valid", "--stride", "2"),
         r"kernel of size 4 is larger than the padded input of length 3 \(n=3, padding=\(0, 0\)\)"),
    Case("ops-outsize-too-big", "ops", "outsize: kernel 5 on input 3, no padding",
         ops("outsize", "3", "5"),
         r"kernel of size 5 is larger than the padded input of length 3 \(n=3, padding=\(0, 0\)\)"),
    Case("ops-unknown-kernel", "ops", "an unknown kernel name",
         filter_cmd("--kernel", "sharpenn"), r"unknown kernel 'sharpenn'; known kernels: .*"),
    Case("ops-kernel-file-missing", "ops", "a kernel file that does not exist",
         filter_cmd("--kernel", "nokernel.npy"), "kernel file not found: nokernel.npy"),
]  # fmt: skip


# ----------------------------------------------------------------------------- checkpoints


def mutated_checkpoint(mutate: Callable[[dict], dict]) -> Callable[[Path, Path], list[str]]:
    """A copy of the trained run's best.pt, changed by ``mutate``, given to `cnnlab predict`."""

    def build(folder: Path, run: Path) -> list[str]:
        import torch

        payload = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
        torch.save(mutate(payload), folder / "model.pt")
        (folder / "in.png").write_bytes(_png(digit()))
        return ["predict", "model.pt", "in.png", "--csv", "out/p.csv"]

    return build


def raw_checkpoint(make: Callable[[Path], bytes], name: str = "model.pt"):
    def build(folder: Path, run: Path) -> list[str]:
        (folder / name).write_bytes(make(run))
        return ["evaluate", name, "--out", "out"]

    return build


def other_architecture(payload: dict) -> dict:
    """A lenet5 checkpoint whose weights are those of a tutorial_cnn."""
    from cnnlab.models import create_model

    payload["model_state"] = create_model("tutorial_cnn").state_dict()
    return payload


def args_of_other_model(payload: dict) -> dict:
    """lenet5's options (activation, pool) under the name tutorial_cnn."""
    payload["model_args"] = {**payload["model_args"], "name": "tutorial_cnn"}
    return payload


def missing_key(payload: dict) -> dict:
    payload["model_state"].pop("conv1.bias")
    return payload


def wrong_classes(payload: dict) -> dict:
    payload["model_args"] = {**payload["model_args"], "num_classes": 5}
    return payload


def no_model_args(payload: dict) -> dict:
    payload.pop("model_args")
    return payload


CKPT = r"model\.pt"
CHECKPOINT_CASES = [
    Case("ckpt-other-architecture", "checkpoint", "tutorial_cnn weights in a lenet5 checkpoint",
         mutated_checkpoint(other_architecture),
         rf"{CKPT} does not fit lenet5: missing keys \[.*\], unexpected keys \[.*\]"),
    Case("ckpt-args-of-other-model", "checkpoint", "lenet5 options under the name tutorial_cnn",
         mutated_checkpoint(args_of_other_model),
         rf"{CKPT}: unknown option\(s\) activation, pool for model 'tutorial_cnn'; valid options: "
         r"hidden, dropout, pool_first"),
    Case("ckpt-missing-key", "checkpoint", "a checkpoint without conv1.bias",
         mutated_checkpoint(missing_key),
         rf"{CKPT} does not fit lenet5: missing keys \['conv1.bias'\], unexpected keys \[\]"),
    Case("ckpt-wrong-shape", "checkpoint", "model_args say 5 classes, weights have 10",
         mutated_checkpoint(wrong_classes),
         rf"{CKPT}: \S+ has shape \(10(, \d+)?\), the model expects \(5(, \d+)?\)"),
    Case("ckpt-no-model-args", "checkpoint", "a checkpoint without model_args",
         mutated_checkpoint(no_model_args),
         rf"{CKPT}: model_args has no model name; cannot rebuild the model"),
    Case("ckpt-truncated", "checkpoint", "best.pt cut in half",
         raw_checkpoint(lambda run: (run / "checkpoints" / "best.pt").read_bytes()[:300_000]),
         rf"cannot read checkpoint {CKPT}: not a readable zip archive \(File is not a zip file; "
         r"the file is truncated or corrupt\)"),
    Case("ckpt-garbage", "checkpoint", "2,000 random bytes named .pt",
         raw_checkpoint(lambda run: random.Random(5).randbytes(2000)),
         rf"cannot read checkpoint {CKPT}: not a PyTorch checkpoint \(.*\)"),
    Case("ckpt-empty", "checkpoint", "an empty .pt file", raw_checkpoint(lambda run: b""),
         rf"cannot read checkpoint {CKPT}: empty file"),
    Case("ckpt-safetensors-garbage", "checkpoint", "random bytes named .safetensors",
         raw_checkpoint(lambda run: random.Random(6).randbytes(500), "model.safetensors"),
         r"cannot read safetensors file model\.safetensors: .*"),
]  # fmt: skip


# ----------------------------------------------------------------------------- configs and paths


def train_config(text: str) -> Callable[[Path, Path], list[str]]:
    def build(folder: Path, run: Path) -> list[str]:
        (folder / "run.yaml").write_text(text)
        return ["train", "--config", "run.yaml", "--dataset", "digits", "--runs-dir", "out",
                "--quiet"]  # fmt: skip

    return build


def train_flags(*flags: str) -> Callable[[Path, Path], list[str]]:
    return lambda folder, run: ["train", "--dataset", "digits", "--runs-dir", "out", *flags]


CONFIG_CASES = [
    Case("config-unknown-key", "config", "a YAML config with a misspelt key (epoch)",
         train_config("epoch: 3\n"),
         r"run\.yaml: unknown option 'epoch' \(see TrainConfig for valid names\)"),
    Case("config-wrong-type", "config", "a YAML config with epochs: five",
         train_config("epochs: five\n"),
         r"run\.yaml: epochs='five' should be int, not str"),
    Case("config-bool-as-int", "config", "a YAML config with batch_size: true",
         train_config("batch_size: true\n"),
         r"run\.yaml: batch_size=True should be int, not bool"),
    Case("config-not-mapping", "config", "a YAML config that is a list",
         train_config("- epochs\n- 3\n"),
         r"run\.yaml: expected a mapping of option: value, got list"),
    Case("config-bad-yaml", "config", "a YAML config that does not parse",
         train_config("epochs: [3\n"), r"run\.yaml: not valid YAML \(.*\)"),
    Case("config-missing-file", "config", "--config naming a missing file",
         lambda folder, run: ["train", "--config", "nope.yaml", "--runs-dir", "out"],
         r"file not found: nope\.yaml"),
    Case("config-bad-choice", "config", "--optimizer adamm",
         train_flags("--optimizer", "adamm"),
         "optimizer='adamm' is not one of sgd, adam, adamw, nadam, rmsprop"),
    Case("config-zero-batch", "config", "--batch-size 0", train_flags("--batch-size", "0"),
         "batch_size=0 is out of range: must be >=1"),
]  # fmt: skip


def parent_is_file(folder: Path, run: Path) -> list[str]:
    """As root, chmod cannot make a folder read-only: a path under a regular file cannot be
    created by anyone."""
    (folder / "in.png").write_bytes(_png(digit()))
    (folder / "out").mkdir(exist_ok=True)
    (folder / "out" / "afile").write_text("x")
    return ["filter", "in.png", "--kernel", "sharpen", "--out", "out/afile/f.png"]


def proc_output(folder: Path, run: Path) -> list[str]:
    """/proc accepts no new files, even from root."""
    (folder / "in.png").write_bytes(_png(digit()))
    return ["predict", str(run), "in.png", "--csv", "/proc/cnnlab-hardening.csv"]


def corrupt_last(folder: Path, run: Path) -> list[str]:
    """A copy of the run whose last.pt lost its second half (a disk error, not our writer)."""
    import shutil

    shutil.copytree(run, folder / "run")
    last = folder / "run" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    return ["train", "--resume", "run", "--quiet"]


PATH_CASES = [
    Case("path-run-missing", "path", "evaluate a run folder that does not exist",
         lambda folder, run: ["evaluate", "runs/nope/version_0", "--out", "out"],
         r"no such checkpoint or run folder: runs/nope/version_0"),
    Case("path-resume-missing", "path", "--resume a run folder that does not exist",
         lambda folder, run: ["train", "--resume", "runs/nope", "--runs-dir", "out"],
         r"nothing to resume in runs/nope: no checkpoints/last\.pt found"),
    Case("path-run-empty", "path", "a run folder without checkpoints",
         lambda folder, run: (folder / "empty_run").mkdir() or ["predict", "empty_run", "x.png"],
         r"no checkpoints/best\.pt in empty_run"),
    Case("path-resume-corrupt", "path", "--resume a run whose last.pt is cut in half",
         corrupt_last, r"cannot read checkpoint run/checkpoints/last\.pt: not a readable zip "
         r"archive \(File is not a zip file; the file is truncated or corrupt\)"),
    Case("path-image-missing", "path", "predict an image that does not exist", missing_image,
         "image not found: no-such.png"),
    Case("path-out-under-file", "path", "--out below a regular file (a read-only location, "
         "even for root)", parent_is_file, r"output folder is a file, not a folder: out/afile"),
    Case("path-out-proc", "path", "--csv into /proc (refuses new files, even for root)",
         proc_output, r"file not found: /proc/cnnlab-hardening\.csv"),
]  # fmt: skip


def three_images(folder: Path, run: Path) -> list[str]:
    for i in range(3):
        (folder / f"in{i}.png").write_bytes(_png(digit()))
    return ["predict", str(run), "in0.png", "in1.png", "in2.png", "--csv", "out/p.csv"]


# A full disk, simulated with RLIMIT_FSIZE: writing past the limit fails with EFBIG ("File too
# large"), as ENOSPC would (Python ignores SIGXFSZ, so the write returns the error).
FULL_DISK_CASES = [
    Case("disk-full-png", "path", "full disk while writing a filtered PNG (limit 64 KB)",
         lambda folder, run: ["filter", "china", "--kernel", "sharpen", "--out", "out/f.png"],
         r"File too large: out/f\.png", fsize=65_536),
    Case("disk-full-csv", "path", "full disk while writing predictions CSV (limit 200 B)",
         three_images, r"File too large: out/p\.csv", fsize=200),
    Case("disk-full-checkpoint", "path", "full disk while training writes its first checkpoint "
         "(limit 100 KB)",
         train_flags("--model", "lenet5", "--epochs", "1", "--threads", "1", "--quiet"),
         r"File too large: out/lenet5-digits/version_0/checkpoints/best\.pt", fsize=100_000,
         leaves=r"lenet5-digits(/version_0(/(config\.yaml|metrics\.csv|history\.json|"
         r"checkpoints))?)?"),
]  # fmt: skip


# _corpus_models.py (model files and inputs from strangers) imports the names above from here
import _corpus_models as _models  # noqa: E402

SPECIAL_CASES, SIZE_CASES, SCHEMA_CASES = (
    _models.SPECIAL_CASES, _models.SIZE_CASES, _models.SCHEMA_CASES)  # fmt: skip
NAN_CASES, ONNX_CASES, BLANK_CASES, SMALL_CASES = (
    _models.NAN_CASES, _models.ONNX_CASES, _models.BLANK_CASES, _models.SMALL_CASES)  # fmt: skip

CASES: list[Case] = [
    *IDX_CASES, *IMAGE_CASES, *OPS_CASES, *CHECKPOINT_CASES, *CONFIG_CASES, *PATH_CASES,
    *FULL_DISK_CASES, *SPECIAL_CASES, *SIZE_CASES, *SCHEMA_CASES, *NAN_CASES, *ONNX_CASES,
    *BLANK_CASES, *SMALL_CASES,
]  # fmt: skip
CLASSES = {  # the corpus's classes of bad input, for the table of figures
    "idx": "IDX data files", "image": "images", "ops": "convolution literals",
    "checkpoint": "damaged checkpoints", "config": "configs and options",
    "path": "paths, full disk",
    "special": "devices, pipes and folders where files belong",
    "size": "sizes from the file driving allocations", "schema": "crafted weights-only payloads",
    "nan": "NaN and infinity", "onnx": "ONNX files that are code", "blank": "blank images",
    "small": "export, evaluate, folders and TorchScript",
}  # fmt: skip


def figures() -> list[tuple[str, int, int]]:
    """(class, bad inputs, valid inputs) per class of the corpus."""
    rows = []
    for kind, label in CLASSES.items():
        cases = [c for c in CASES if c.kind == kind]
        rows.append((label, sum(c.error is not None for c in cases),
                     sum(c.error is None for c in cases)))  # fmt: skip
    return rows


def markdown_table() -> str:
    """The corpus as a Markdown table (for the README's Reliability section)."""
    rows = ["| case | input | expected |", "| --- | --- | --- |"]
    for c in CASES:
        outcome = "works (exit 0)" if c.error is None else f"exit 2: `{c.error}`"
        if c.server is not None:
            outcome += f"; server {c.server}"
        outcome = outcome.replace("|", "\\|")
        rows.append(f"| {c.name} | {c.what} | {outcome} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
