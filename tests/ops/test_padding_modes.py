"""padding_mode (zeros / constant / reflect / replicate / symmetric / circular) against SciPy and
torch, and conv2d_nchw's unbatched input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import conv1d, conv2d, conv2d_nchw, correlate1d, correlate2d

FAST = settings(max_examples=40, deadline=None)
SCIPY_BOUNDARY = {"zeros": "fill", "constant": "fill", "symmetric": "symm", "circular": "wrap"}
TORCH_MODES = ("zeros", "reflect", "replicate", "circular")


@FAST
@given(
    n=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    m=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    mode=st.sampled_from(sorted(SCIPY_BOUNDARY)),
    integer=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv2d_boundaries_equal_scipy(n, m, mode, integer, seed):
    rng = np.random.default_rng(seed)
    if integer:
        x, w, fill = rng.integers(-50, 50, n), rng.integers(-5, 5, m), 3
    else:
        x, w, fill = rng.standard_normal(n), rng.standard_normal(m), -1.5
    fill = fill if mode == "constant" else 0
    for out in ("same", "full"):
        expected = scipy.signal.convolve2d(x, w, out, SCIPY_BOUNDARY[mode], fill)
        got = conv2d(x, w, out, padding_mode=mode, fillvalue=fill)
        assert got.dtype == (np.int64 if integer else np.float64)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    expected = scipy.signal.correlate2d(x, w, "full", SCIPY_BOUNDARY[mode], fill)
    got = correlate2d(x, w, "full", padding_mode=mode, fillvalue=fill)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def _torch_pad(t, pads, mode, x):
    """torch's F.pad of the last axes by pads = ((before, after), ...) of those axes.

    torch refuses to wrap around more than once; SciPy's "wrap" (and cnnlab) repeat the
    input, so a circular padding wider than the input is built with numpy.pad instead.
    """
    sizes = x.shape[-len(pads) :]
    if mode == "circular" and any(max(p) > n for p, n in zip(pads, sizes, strict=True)):
        lead = [(0, 0)] * (t.ndim - len(pads))
        return torch.from_numpy(np.pad(t.numpy(), lead + list(pads), mode="wrap"))
    flat = [v for before_after in reversed(pads) for v in before_after]
    if mode == "zeros":
        return F.pad(t, flat)
    return F.pad(t, flat, mode=mode)


@FAST
@given(
    n=st.tuples(st.integers(2, 9), st.integers(2, 9)),
    m=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    pad=st.tuples(*[st.integers(0, 4)] * 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    mode=st.sampled_from(TORCH_MODES),
    seed=st.integers(0, 2**16),
)
def test_correlate2d_padding_modes_equal_torch(n, m, pad, stride, dilation, mode, seed):
    pads = ((pad[0], pad[1]), (pad[2], pad[3]))
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(m)
    try:
        xp = _torch_pad(torch.from_numpy(x)[None, None], pads, mode, x)
        expected = F.conv2d(xp, torch.from_numpy(w)[None, None], stride=stride, dilation=dilation)
    except RuntimeError:
        with pytest.raises(CnnlabError) as info:
            correlate2d(x, w, pads, stride, dilation, padding_mode=mode)
        assert "\n" not in str(info.value)
        return
    got = correlate2d(x, w, pads, stride, dilation, padding_mode=mode)
    np.testing.assert_allclose(got, expected[0, 0].numpy(), rtol=1e-10, atol=1e-12)
    # true convolution is correlation with the kernel turned by 180 degrees
    got = conv2d(x, w[::-1, ::-1], pads, stride, dilation, padding_mode=mode)
    np.testing.assert_allclose(got, expected[0, 0].numpy(), rtol=1e-10, atol=1e-12)


@FAST
@given(
    n=st.integers(2, 30),
    m=st.integers(1, 6),
    pad=st.tuples(st.integers(0, 6), st.integers(0, 6)),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    mode=st.sampled_from(TORCH_MODES),
    integer=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv1d_padding_modes_equal_torch(n, m, pad, stride, dilation, mode, integer, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-99, 99, n) if integer else rng.standard_normal(n)
    w = rng.integers(-9, 9, m) if integer else rng.standard_normal(m)
    kernel = torch.from_numpy(w.astype(np.float64)[::-1].copy())[None, None]
    try:
        xp = _torch_pad(torch.from_numpy(x.astype(np.float64))[None, None], [pad], mode, x)
        expected = F.conv1d(xp, kernel, stride=stride, dilation=dilation)[0, 0].numpy()
    except RuntimeError:
        with pytest.raises(CnnlabError, match="padding|kernel of size"):
            conv1d(x, w, pad, stride, dilation, padding_mode=mode)
        return
    got = conv1d(x, w, pad, stride, dilation, padding_mode=mode)
    if integer:
        assert got.dtype == np.int64 and got.tolist() == np.rint(expected).astype(int).tolist()
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    back = correlate1d(x, w[::-1], pad, stride, dilation, padding_mode=mode)
    np.testing.assert_allclose(back, got, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@FAST
@given(
    groups=st.integers(1, 2),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.one_of(st.tuples(st.integers(0, 4), st.integers(0, 4)), st.just("same")),
    size=st.tuples(st.integers(3, 8), st.integers(3, 8)),
    mode=st.sampled_from(TORCH_MODES),
    batched=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv2d_nchw_padding_mode_equals_torch_conv2d_module(
    groups, k, stride, dilation, padding, size, mode, batched, seed
):
    if padding == "same":
        stride = (1, 1)  # torch refuses 'same' with stride > 1
    elif mode == "circular":
        padding = (min(padding[0], size[0]), min(padding[1], size[1]))  # torch wraps once only
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2 * groups, *size) if batched else (2 * groups, *size))
    layer = torch.nn.Conv2d(
        2 * groups,
        2 * groups,
        k,
        stride,
        padding,
        dilation,
        groups,
        True,
        mode,
        dtype=torch.float64,
    )
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    try:
        with torch.no_grad():
            expected = layer(torch.from_numpy(x)).numpy()
    except RuntimeError:
        with pytest.raises(CnnlabError):
            conv2d_nchw(x, w, b, stride, padding, dilation, groups, padding_mode=mode)
        return
    got = conv2d_nchw(x, w, b, stride, padding, dilation, groups, padding_mode=mode)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_unbatched_conv2d_nchw_equals_torch():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 7, 6)), rng.standard_normal((4, 3, 3, 2)), rng.random(4)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), 2, 1)
    got = conv2d_nchw(x, w, b, 2, 1)
    assert got.shape == (4, 4, 4)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12)
    with pytest.raises(CnnlabError, match=r"input has shape \(7, 6\); expected \(N, C, H, W\)"):
        conv2d_nchw(x[0], w)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: conv1d([1, 2, 3], [1, 1], 3, padding_mode="reflect"),
            r"padding=\(3, 3\) must be smaller than the input size 3 for padding_mode='reflect'",
        ),
        (
            lambda: conv2d([[1]], [[1]], padding_mode="mirror"),
            "padding_mode='mirror' is not one of",
        ),
        (lambda: conv2d([[1]], [[1]], 1, fillvalue=2), "fillvalue=2 is only used with"),
        (lambda: conv2d([[1]], [[1]], 1, padding_mode="constant", fillvalue=np.nan), "finite"),
    ],
)
def test_padding_mode_errors_are_one_line(call, message):
    with pytest.raises(CnnlabError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_constant_fill_fraction_makes_integer_input_float():
    got = conv1d([1, 2, 3], [1, 1], 1, padding_mode="constant", fillvalue=0.5)
    assert got.tolist() == [1.5, 3.0, 5.0, 3.5]
    assert conv1d([1, 2, 3], [1, 1], 1, padding_mode="constant", fillvalue=2).tolist() == [
        3,
        3,
        5,
        5,
    ]
