"""Property-based fuzzing: thousands of generated inputs, only the documented errors escape.

Targets: the IDX reader (random bytes, gzip streams, mutated valid files), image decoding and
preprocessing (random bytes, mutated PNG/JPEG/GIF files, random arrays in every Pillow mode and
size through ``cnnlab.images`` and ``cnnlab.predict.preprocess``), and the literal parsers
(``parse_kernel``/``parse_matrix`` and the ``cnnlab conv1d/conv2d`` command line). Anything but
a :class:`~cnnlab.errors.CnnlabError` subclass (or a result that breaks the documented contract)
fails. Examples per test are listed in ``EXAMPLES``; the total is printed by
``test_fuzz_budget``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnlab.data.idx import IDX_DTYPES, decompress_bytes, parse_idx
from cnnlab.errors import CnnlabError, DataError, ImageError
from cnnlab.images import read_image, to_gray_array, to_rgb_array
from cnnlab.ops.filters import parse_kernel, parse_matrix
from cnnlab.predict import preprocess

EXAMPLES = {
    "idx_random": 800,
    "idx_mutated": 700,
    "gzip": 500,
    "image_bytes": 500,
    "image_mutated": 600,
    "image_arrays": 500,
    "kernel_text": 800,
    "cli_literals": 200,
}
FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def fuzz(name: str):
    return settings(max_examples=EXAMPLES[name], **FUZZ)


def test_fuzz_budget():
    assert sum(EXAMPLES.values()) >= 4000


# ----------------------------------------------------------------------------- IDX


def _idx(shape: tuple[int, ...], code: int) -> bytes:
    dtype = IDX_DTYPES[code]
    data = np.zeros(shape, dtype).tobytes()
    dims = b"".join(struct.pack(">I", d) for d in shape)
    return bytes([0, 0, code, len(shape)]) + dims + data


def _check_idx(data: bytes, ndim) -> None:
    try:
        arr = parse_idx(data, "fuzz.idx", ndim)
    except DataError as exc:
        assert str(exc).startswith("fuzz.idx") and "\n" not in str(exc)
        return
    # accepted: the header and the length agree exactly
    header = 4 + 4 * data[3]
    assert arr.nbytes == len(data) - header
    assert ndim is None or arr.ndim == ndim


@fuzz("idx_random")
@given(st.binary(max_size=300), st.sampled_from([None, 1, 3]))
def test_idx_random_bytes(data, ndim):
    _check_idx(data, ndim)


@st.composite
def mutated_idx(draw):
    code = draw(st.sampled_from(sorted(IDX_DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=4)))
    data = bytearray(_idx(shape, code))
    for _ in range(draw(st.integers(0, 3))):  # flip header bytes (sizes, code, ndim)
        i = draw(st.integers(0, min(len(data), 4 + 4 * len(shape)) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(-8, 8))
    return bytes(data[:cut] if cut < 0 else data + bytes(cut))


@fuzz("idx_mutated")
@given(mutated_idx(), st.sampled_from([None, 1, 3]))
def test_idx_mutated_headers(data, ndim):
    _check_idx(data, ndim)


@fuzz("gzip")
@given(st.binary(max_size=200), st.integers(0, 300), st.binary(max_size=20))
def test_gzip_streams(payload, cut, junk):
    """Real gzip streams cut short or with junk appended, and gzip magic + random bytes."""
    for data in (gzip.compress(payload)[:cut], gzip.compress(payload) + junk, b"\x1f\x8b" + junk):
        try:
            out = decompress_bytes(data, "fuzz.gz")
        except DataError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(out, bytes)


# ----------------------------------------------------------------------------- images


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(len(fmt))
    img = Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8))
    if fmt == "GIF":
        img = img.convert("P")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")}


def _through_pipeline(data: bytes) -> None:
    """read_image, then preprocessing: ImageError only, and a sane 28x28 result."""
    try:
        img = read_image(data, max_pixels=1_000_000, name="fuzz")
        for style in ("mnist", "fashion"):
            x = preprocess(img, style)
            assert x.shape == (28, 28) and x.dtype == np.float32
            assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    except ImageError as exc:
        assert "\n" not in str(exc)


@fuzz("image_bytes")
@given(st.binary(max_size=400))
def test_random_bytes_as_image(data):
    _through_pipeline(data)


@fuzz("image_mutated")
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_mutated_image_files(fmt, data):
    raw = bytearray(SEEDS[fmt])
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    _through_pipeline(bytes(raw[:cut]))


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr", "HSV"]


@st.composite
def pil_images(draw):
    mode = draw(st.sampled_from(MODES))
    h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    bands = len(Image.new(mode, (1, 1)).getbands())
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if mode in ("I", "I;16"):
        arr = rng.integers(0, 65536 if mode == "I;16" else 2**31 - 1, (h, w))
        return Image.fromarray(arr.astype("<u2" if mode == "I;16" else np.int32))
    if mode == "F":
        scale = draw(st.sampled_from([1.0, 1e-30, 1e30]))
        return Image.fromarray((rng.standard_normal((h, w)) * scale).astype(np.float32))
    flat = draw(st.booleans())  # constant images: blank canvases, zero ranges
    arr = (
        np.full((h, w, bands), rng.integers(0, 256), np.uint8)
        if flat
        else rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    )
    base = Image.fromarray(arr[:, :, 0] if bands == 1 else arr[:, :, :3] if bands >= 3 else arr)
    img = base.convert(mode) if base.mode != mode else base
    if mode == "P" and draw(st.booleans()):
        img.info["transparency"] = int(rng.integers(0, 256))
    return img


@fuzz("image_arrays")
@given(pil_images(), st.sampled_from(["mnist", "fashion", "plain"]), st.sampled_from([8, 28]))
def test_preprocess_any_mode_and_size(img, style, size):
    try:
        gray, rgb = to_gray_array(img), to_rgb_array(img)
        x = preprocess(img, style, size)
    except ImageError as exc:
        assert "\n" not in str(exc)
        return
    assert gray.shape == img.size[::-1] and rgb.shape == (*img.size[::-1], 3)
    assert gray.min() >= 0 and gray.max() <= 1 and rgb.min() >= 0 and rgb.max() <= 1
    assert x.shape == (size, size) and x.dtype == np.float32
    assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


# ----------------------------------------------------------------------------- literals

LITERAL_CHARS = "0123456789,;:.-+eE naifINFxbox[] \t"
literal_text = st.one_of(
    st.text(alphabet=LITERAL_CHARS, max_size=40),
    st.text(max_size=20),  # any unicode at all
    st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=4),
             min_size=1, max_size=4).map(lambda rows: ";".join(",".join(map(repr, r))
                                                               for r in rows)),
)  # fmt: skip


@fuzz("kernel_text")
@given(literal_text)
def test_kernel_and_matrix_literals(text):
    for parse in (parse_kernel, parse_matrix):
        try:
            k = parse(text)
        except CnnlabError as exc:
            assert "\n" not in str(exc)
            continue
        assert k.ndim == 2 and k.size > 0 and np.isfinite(k).all(), (text, k)


@fuzz("cli_literals")
@given(
    st.text(alphabet=LITERAL_CHARS, min_size=1, max_size=24),
    st.text(alphabet=LITERAL_CHARS, min_size=1, max_size=12),
    st.sampled_from(["1", "2", "0", "-1", "1,2", "x", "3,0"]),
    st.sampled_from([None, "valid", "same", "full", "1", "2,1", "-1", "q"]),
    st.sampled_from(["conv1d", "conv2d"]),
)
def test_cli_literal_parser(x, k, stride, padding, command):
    """`cnnlab conv1d/conv2d` in-process: exit 0 or exit 2 with one line, never a traceback."""
    argv = [command, x, "--kernel", k, "--stride", stride]
    if padding is not None:
        argv += ["--padding", padding]
    out, err = io.StringIO(), io.StringIO()
    from cnnlab.cli import main

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    assert rc in (0, 2), (argv, rc, err.getvalue())
    if rc == 2:
        lines = err.getvalue().splitlines()
        assert lines[-1].startswith("cnnlab: error: "), (argv, err.getvalue())
        assert len(lines) == 1 or lines[0].startswith("usage:"), (argv, err.getvalue())


@pytest.mark.parametrize("text", ["1e400", "-1e400,1", "nan", "inf;1", "1,2;3,", "[[1,2]]"])
def test_literal_edge_cases(text):
    """Overflow to inf and NaN are refused; the others parse or fail cleanly."""
    try:
        k = parse_matrix(text)
    except CnnlabError:
        return
    assert np.isfinite(k).all()
