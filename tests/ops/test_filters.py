"""Kernel catalogue, kernel parsing, filtering with boundaries, display scaling and CLAHE."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

from cnnlab.errors import CnnlabError
from cnnlab.ops import (
    KERNELS,
    apply_kernel,
    clahe,
    gaussian_kernel,
    list_kernels,
    parse_kernel,
    scale_for_display,
)


def test_catalogue_kernels():
    names = [name for name, _ in list_kernels()]
    for required in (
        "identity",
        "sharpen",
        "edge",
        "box",
        "gaussian",
        "sobel-x",
        "sobel-y",
        "prewitt-x",
        "prewitt-y",
        "emboss",
        "hline",
        "vline",
        "edge10",
    ):
        assert required in names
    assert parse_kernel("sharpen").tolist() == [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    assert parse_kernel("edge").tolist() == [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]
    assert parse_kernel("edge").sum() == 0
    assert parse_kernel("edge10").tolist() == [[10, 10, 10], [0, 0, 0], [-10, -10, -10]]
    assert parse_kernel("box").sum() == pytest.approx(1.0)
    assert parse_kernel("sobel_x").tolist() == parse_kernel("sobel-x").tolist()
    assert (parse_kernel("sobel-y") == parse_kernel("sobel-x").T).all()
    for name in KERNELS:
        k = parse_kernel(name)
        assert k.ndim == 2 and np.isfinite(k).all()


def test_line_kernels_notebook_004():
    v, h = parse_kernel("vline:7"), parse_kernel("hline")
    expected = np.zeros((7, 7))
    expected[:, 3] = 1  # filters[:, 3, :, 0] = 1 in notebook 004
    assert (v == expected).all() and (h == expected.T).all()
    assert parse_kernel("vline:11").shape == (11, 11)


def test_gaussian_matches_scipy_ndimage():
    k = parse_kernel("gaussian:7:1.5")
    assert k.shape == (7, 7) and k.sum() == pytest.approx(1.0)
    impulse = np.zeros((7, 7))
    impulse[3, 3] = 1
    expected = scipy.ndimage.gaussian_filter(impulse, 1.5, truncate=2.0, mode="constant")
    np.testing.assert_allclose(k, expected / expected.sum(), rtol=1e-6)
    assert (gaussian_kernel(5, 1.0) == parse_kernel("gaussian")).all()


def test_literal_and_files(tmp_path):
    assert parse_kernel("0,-1,0;-1,5,-1;0,-1,0").tolist() == parse_kernel("sharpen").tolist()
    assert parse_kernel("1 2;3 4").tolist() == [[1, 2], [3, 4]]
    assert parse_kernel("[1,2;3,4]").tolist() == [[1, 2], [3, 4]]
    np.save(tmp_path / "k.npy", np.arange(6.0).reshape(2, 3))
    assert parse_kernel(str(tmp_path / "k.npy")).shape == (2, 3)
    (tmp_path / "k.txt").write_text("1 2 3\n4 5 6\n")
    assert parse_kernel(tmp_path / "k.txt").tolist() == [[1, 2, 3], [4, 5, 6]]
    (tmp_path / "k.csv").write_text("1,2\n3,4\n")
    assert parse_kernel(str(tmp_path / "k.csv")).tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("blurry", "unknown kernel 'blurry'; known kernels: identity, sharpen"),
        ("1,x;2,3", "'x' is not a number"),
        ("1,nan;2,3", "'nan' is not a finite number"),
        ("1,inf", "'inf' is not a finite number"),
        ("1,2;3", r"rows of different lengths \[2, 1\]"),
        ("1,2;", "empty row"),
        ("vline:4", "vline size 4 must be a positive odd integer"),
        ("gaussian:5:0", "sigma=0 must be > 0"),
        ("gaussian:5:a", "'a' is not a number"),
        ("sharpen:3", "too many ':' arguments for sharpen"),
        ("missing.npy", "kernel file not found: missing.npy"),
        ("", "kernel spec is empty"),
    ],
)
def test_parse_kernel_errors(spec, message):
    with pytest.raises(CnnlabError, match=message):
        parse_kernel(spec)


def test_bad_kernel_files(tmp_path):
    (tmp_path / "bad.txt").write_text("1 2\nx y\n")
    with pytest.raises(CnnlabError, match="unreadable"):
        parse_kernel(tmp_path / "bad.txt")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(CnnlabError, match="contains nan"):
        parse_kernel(tmp_path / "nan.npy")


def _image():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (20, 24, 3))


def test_apply_kernel_boundaries():
    img = _image()
    k = parse_kernel("sobel-x")
    zero = apply_kernel(img, "sobel-x", boundary="zero")
    valid = apply_kernel(img, "sobel-x", boundary="valid")
    rep = apply_kernel(img, "sobel-x", boundary="replicate")
    assert zero.shape == rep.shape == img.shape and valid.shape == (18, 22, 3)
    for c in range(3):
        np.testing.assert_allclose(zero[..., c], scipy.signal.convolve2d(img[..., c], k, "same"))
        np.testing.assert_allclose(valid[..., c], scipy.signal.convolve2d(img[..., c], k, "valid"))
        np.testing.assert_allclose(
            rep[..., c], scipy.ndimage.convolve(img[..., c], k, mode="nearest"), atol=1e-12
        )
    # the interior is the same whatever the boundary
    np.testing.assert_allclose(zero[1:-1, 1:-1], valid)
    np.testing.assert_allclose(rep[1:-1, 1:-1], valid)


@pytest.mark.parametrize("name", ["sobel-x", "gaussian:5:1.0", "box", "2,1;0,-1", "vline:7"])
def test_apply_kernel_mirror_wrap_and_constant_boundaries_equal_scipy(name):
    img, k = _image(), parse_kernel(name)
    # scipy.ndimage names: mirror = reflect without the edge, reflect = symmetric
    ndimage_modes = {"reflect": "mirror", "symmetric": "reflect", "circular": "wrap"}
    for boundary, scipy_boundary in (("symmetric", "symm"), ("circular", "wrap")):
        got = apply_kernel(img, k, boundary=boundary)
        for c in range(3):
            expected = scipy.signal.convolve2d(img[..., c], k, "same", boundary=scipy_boundary)
            np.testing.assert_allclose(got[..., c], expected, atol=1e-12)
    got = apply_kernel(img, k, boundary="constant", fillvalue=0.5)
    expected = scipy.signal.convolve2d(img[..., 0], k, "same", boundary="fill", fillvalue=0.5)
    np.testing.assert_allclose(got[..., 0], expected, atol=1e-12)
    if k.shape[0] % 2 and k.shape[1] % 2:  # ndimage centres odd kernels the same way
        for boundary, mode in ndimage_modes.items():
            got = apply_kernel(img, k, boundary=boundary)
            expected = scipy.ndimage.convolve(img[..., 1], k, mode=mode)
            np.testing.assert_allclose(got[..., 1], expected, atol=1e-12)


def test_apply_kernel_boundary_errors():
    with pytest.raises(CnnlabError, match="boundary='extend' is not one of zero, valid"):
        apply_kernel(_image(), "box", boundary="extend")
    with pytest.raises(CnnlabError, match="fillvalue=1 is only used with boundary='constant'"):
        apply_kernel(_image(), "box", fillvalue=1.0)
    with pytest.raises(CnnlabError, match="must be smaller than the input size 2"):
        apply_kernel(np.ones((2, 9)), "box:5", boundary="reflect")


def test_apply_kernel_gray_and_identity():
    img = _image()
    gray = apply_kernel(img, "identity", color="gray")
    np.testing.assert_allclose(gray, img @ [0.299, 0.587, 0.114])
    np.testing.assert_allclose(apply_kernel(img, "identity", boundary="replicate"), img)
    # a constant image stays constant under a normalised blur with replicate borders
    flat = np.full((9, 9), 0.3)
    np.testing.assert_allclose(apply_kernel(flat, "gaussian", boundary="replicate"), flat)
    with pytest.raises(CnnlabError, match="boundary='wrap'"):
        apply_kernel(img, "identity", boundary="wrap")


def test_scale_for_display():
    x = np.array([[-2.0, 0.5, 4.0]])
    assert scale_for_display(x, "clip").tolist() == [[0.0, 0.5, 1.0]]
    assert scale_for_display(x, "abs").tolist() == [[0.5, 0.125, 1.0]]
    assert scale_for_display(x, "minmax").tolist() == [[0.0, 2.5 / 6, 1.0]]
    assert scale_for_display(np.zeros((2, 2)), "minmax").tolist() == [[0, 0], [0, 0]]
    with pytest.raises(CnnlabError, match="scale='log'"):
        scale_for_display(x, "log")


def test_clahe_range_and_shape_on_float_filter_output():
    edges = apply_kernel(_image()[..., 0], "edge")  # floats in about [-8, 8]
    out = clahe(edges, tiles=4, clip_limit=0.03)
    assert out.shape == edges.shape and out.min() >= 0 and out.max() <= 1
    rgb = scale_for_display(apply_kernel(_image(), "sharpen"), "clahe")
    assert rgb.shape == (20, 24, 3) and rgb.min() >= 0 and rgb.max() <= 1


def test_clahe_single_tile_is_monotone():
    x = np.random.default_rng(1).normal(0.5, 0.05, (32, 32))
    out = clahe(x, tiles=1, clip_limit=0.02)
    order = np.argsort(x, axis=None)
    assert np.all(np.diff(out.ravel()[order]) >= -1e-12)  # same order of grey levels


def test_clahe_is_monotone_at_every_pixel_position():
    # the LUT blend at a fixed pixel uses non-negative weights of non-decreasing tables
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, (40, 40))
    brighter = np.clip(base + 0.05, 0, 1)
    both = clahe(np.concatenate([base, brighter]), tiles=1)
    assert np.all(both[40:] >= both[:40] - 1e-12)


def test_clahe_increases_contrast_of_a_low_contrast_image():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64]
    low = 0.45 + 0.05 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 0.005, (64, 64))
    out = clahe(low, tiles=4, clip_limit=0.05)
    assert out.std() > 1.2 * scale_for_display(low, "minmax").std()  # beyond a plain stretch
    assert out.std() > 10 * low.std()
    # the clip limit bounds the contrast gain: a lower limit gives a flatter result
    assert clahe(low, tiles=4, clip_limit=0.005).std() < out.std()


def test_clahe_errors_and_constant():
    assert (clahe(np.full((5, 5), 2.0)) == 0).all()
    with pytest.raises(CnnlabError, match="clip_limit=0"):
        clahe(np.ones((4, 4)), clip_limit=0)
    with pytest.raises(CnnlabError, match="2-D"):
        clahe(np.ones(4))


@pytest.mark.parametrize(
    "module",
    [
        "shapes",
        "conv",
        "nchw",
        "pool",
        "filters",
        "clahe",
        "activations",
        "backend",
        "boundary",
        "integer",
        "__init__",
    ],
)
def test_docstring_examples(module):
    name = "cnnlab.ops" if module == "__init__" else f"cnnlab.ops.{module}"
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
