"""conv1d / conv2d / correlate: notebook examples, numpy / scipy / loop references, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import conv1d, conv2d, correlate1d, correlate2d, same_padding
from cnnlab.ops import reference as ref

FAST = settings(max_examples=40, deadline=None)

# notebook 000, Example 2
X = [[1, 3, 2, 4], [5, 6, 1, 3], [1, 2, 0, 2], [3, 4, 3, 2]]
W = [[1, 0, 3], [1, 2, 1], [0, 1, 1]]


def close(a, b, x, w, rtol=1e-10):
    """1e-10 relative to the size of the terms summed (FFT error scales with them)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.abs(np.asarray(x, dtype=float)).max() * np.abs(np.asarray(w, dtype=float)).sum()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(scale, 1e-300))


def test_notebook_000_conv1d():
    out = conv1d([1, 3, 2, 4, 5, 6, 1, 3], [1, 0, 3, 1, 2], padding=2)
    assert out.tolist() == [5, 14, 16, 26, 24, 34, 19, 22]
    assert out.tolist() == np.convolve([1, 3, 2, 4, 5, 6, 1, 3], [1, 0, 3, 1, 2], "same").tolist()


def test_notebook_000_conv2d_valid_and_same():
    assert conv2d(X, W).tolist() == [[25, 24], [28, 25]]
    assert conv2d(X, W, "same").tolist() == [
        [11, 25, 32, 13],
        [19, 25, 24, 13],
        [13, 28, 25, 17],
        [11, 17, 14, 9],
    ]


def test_notebook_003_edge_example():
    image = [[200] * 5] * 3 + [[0] * 5] * 3
    edge = [[10, 10, 10], [0, 0, 0], [-10, -10, -10]]
    expected = [[0, 0, 0], [6000, 6000, 6000], [6000, 6000, 6000], [0, 0, 0]]
    assert correlate2d(image, edge).tolist() == expected  # what a CNN layer computes
    # true convolution flips the kernel upside down, so the sign flips
    assert conv2d(image, edge).tolist() == (-np.array(expected)).tolist()


def test_notebook_000_2d_figure_padding_and_stride():
    # X 3x3, W 3x3, p=(1,1), s=(2,2) -> 2x2, checked against the loop definition
    x = np.arange(9.0).reshape(3, 3)
    w = np.arange(1.0, 10.0).reshape(3, 3)
    out = conv2d(x, w, (1, 1), (2, 2))
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, ref.conv2d_loops(x, w, ((1, 1), (1, 1)), (2, 2)))
    np.testing.assert_allclose(out, ref.notebook_conv2d(x, w, (1, 1), (1, 1))[::2, ::2])


shape = st.integers(1, 9)


@FAST
@given(n1=shape, n2=shape, m1=shape, m2=shape, seed=st.integers(0, 2**16))
def test_conv2d_equals_scipy_all_modes_both_methods(n1, n2, m1, m2, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((n1, n2)), rng.standard_normal((m1, m2))
    for mode in ("full", "same", "valid"):
        if mode == "valid" and (m1 > n1 or m2 > n2) and (m1 < n1 or m2 < n2):
            with pytest.raises(CnnlabError, match="larger than the padded input"):
                conv2d(x, w, mode)  # neither fits inside the other: SciPy raises too
            continue
        for method in ("direct", "fft", "auto"):
            close(conv2d(x, w, mode, method=method), scipy.signal.convolve2d(x, w, mode), x, w)
            if mode != "same":
                got = correlate2d(x, w, mode, method=method)
                close(got, scipy.signal.correlate2d(x, w, mode), x, w)


@FAST
@given(n=st.integers(1, 30), m=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_conv1d_equals_numpy_convolve(n, m, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(m)
    close(conv1d(x, w, "full"), np.convolve(x, w, "full"), x, w)
    if m <= n:  # numpy's 'same'/'valid' swap arguments when the kernel is longer
        close(conv1d(x, w, "same"), np.convolve(x, w, "same"), x, w)
        close(conv1d(x, w, "valid"), np.convolve(x, w, "valid"), x, w)
        close(correlate1d(x, w, "valid"), np.correlate(x, w, "valid"), x, w)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_even_kernel_same_matches_scipy_alignment(m):
    rng = np.random.default_rng(m)
    x, w = rng.standard_normal((11, 10)), rng.standard_normal((m, m + 2))
    for method in ("direct", "fft"):
        close(conv2d(x, w, "same", method=method), scipy.signal.convolve2d(x, w, "same"), x, w)
    close(conv1d(x[0], w[0], "same"), np.convolve(x[0], w[0], "same"), x, w)


def test_kernel_larger_than_input_full_mode():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((7, 9))
    for method in ("direct", "fft"):
        close(conv2d(x, w, "full", method=method), scipy.signal.convolve2d(x, w, "full"), x, w)
        close(conv2d(x, w, "same", method=method), scipy.signal.convolve2d(x, w, "same"), x, w)
    close(conv1d([1.0, 2.0], [1.0, 2.0, 3.0, 4.0], "full"), np.convolve([1, 2], [1, 2, 3, 4]), x, w)


@FAST
@given(
    n=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    m=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    pad=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    flip=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_padding_stride_dilation_against_loops(n, m, pad, stride, dilation, flip, seed):
    pads = ((pad[0], pad[1]), (pad[2], pad[3]))
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, m, strict=True)]
    if any(s > nn + a + b for s, nn, (a, b) in zip(spans, n, pads, strict=True)):
        with pytest.raises(CnnlabError, match="larger than the padded input"):
            conv2d(np.ones(n), np.ones(m), pads, stride, dilation)
        return
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(m)
    fn, loops = (conv2d, ref.conv2d_loops) if flip else (correlate2d, ref.correlate2d_loops)
    expected = loops(x, w, pads, stride, dilation)
    for method in ("direct", "fft"):
        close(fn(x, w, pads, stride, dilation, method=method), expected, x, w)


def tf_same_pads(n, m, s):
    """TensorFlow's documented SAME rule, written independently of cnnlab."""
    out = -(-n // s)
    total = max((out - 1) * s + m - n, 0)
    return (total // 2, total - total // 2)


@pytest.mark.parametrize("n", [5, 6, 7, 8])
@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("s", [2, 3])
def test_same_with_stride_follows_tensorflow(n, m, s):
    rng = np.random.default_rng(n * 100 + m * 10 + s)
    x, w = rng.standard_normal((n, n + 1)), rng.standard_normal((m, m))
    pads = (tf_same_pads(n, m, s), tf_same_pads(n + 1, m, s))
    for fn, loops in ((conv2d, ref.conv2d_loops), (correlate2d, ref.correlate2d_loops)):
        out = fn(x, w, "same", s)
        assert out.shape == (math.ceil(n / s), math.ceil((n + 1) / s))
        close(out, loops(x, w, pads, (s, s)), x, w)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_correlate_same_even_kernel_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((9, 8)), rng.standard_normal((4, 2))
    expected = torch.nn.functional.conv2d(
        torch.tensor(x)[None, None], torch.tensor(w)[None, None], padding="same"
    )[0, 0].numpy()
    close(correlate2d(x, w, "same"), expected, x, w)


@pytest.mark.parametrize(
    ("xd", "wd", "out"),
    [
        (np.int64, np.int64, np.int64),
        (np.int32, np.uint8, np.int64),
        (np.float32, np.float32, np.float32),
        (np.float32, np.float64, np.float64),
        (np.int64, np.float32, np.float64),  # numpy's promotion rule
        (np.float64, np.int16, np.float64),
    ],
)
def test_dtypes(xd, wd, out):
    x = (np.arange(30) % 7).reshape(5, 6).astype(xd)
    w = np.array([[1, 2], [3, 1]], dtype=wd)
    got = conv2d(x, w, "full")
    assert got.dtype == out
    expected = scipy.signal.convolve2d(x.astype(float), w.astype(float), "full")
    np.testing.assert_allclose(got, expected, rtol=1e-6 if out == np.float32 else 1e-12)


def test_large_integer_inputs_stay_exact():
    x = np.full((40, 40), 10**6, dtype=np.int64)
    w = np.full((15, 15), 10**5, dtype=np.int64)
    got = conv2d(x, w, "same")
    assert np.array_equal(got, scipy.signal.convolve2d(x, w, "same"))


def test_tiny_kernel_values_are_not_dropped():
    # scipy.ndimage ignores |w| <= DBL_EPSILON; cnnlab rescales the kernel first
    x = np.ones((4, 4))
    np.testing.assert_allclose(conv2d(x, [[1e-20]], method="direct"), 1e-20 * x, rtol=1e-12)


def test_big_image_fft_path_matches_direct():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((300, 257)), rng.standard_normal((15, 12))
    direct = conv2d(x, w, "same", method="direct")
    close(conv2d(x, w, "same", method="fft"), direct, x, w)
    close(conv2d(x, w, "same", 3, 2, method="fft"), conv2d(x, w, "same", 3, 2), x, w)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1, 2, 3], [1, np.nan]), "kernel contains nan"),
        (([1, 2, 3], [1, np.inf]), "kernel contains inf"),
        (([1, np.nan, 3], [1]), "input contains nan"),
        (([1, 2, 3], [1]), None),
        (([], [1]), "input is empty"),
        (([1, 2], [1, 2, 3], "valid", 2), "kernel of size 3 is larger than the padded input"),
        (([1, 2], [1, 2, 3], 0), "kernel of size 3 is larger than the padded input of length 2"),
        ((["a", "b"], [1]), "expected real numbers"),
        (([1j, 2], [1]), "expected real numbers"),
        (([[1, 2]], [1]), "expected 1 dimensions"),
    ],
)
def test_conv1d_errors(args, message):
    if message is None:
        conv1d(*args)
        return
    with pytest.raises(CnnlabError, match=message):
        conv1d(*args)


def test_conv2d_errors_name_values():
    with pytest.raises(CnnlabError, match="stride=0 must be >= 1 for input of length 4"):
        conv2d(X, W, stride=0)
    with pytest.raises(CnnlabError, match="dilation=0"):
        conv2d(X, W, dilation=(1, 0))
    with pytest.raises(CnnlabError, match="padding='middle'"):
        conv2d(X, W, "middle")
    with pytest.raises(CnnlabError, match="padding=-1"):
        conv2d(X, W, -1)
    with pytest.raises(CnnlabError, match="method='magic'"):
        conv2d(X, W, method="magic")
    with pytest.raises(CnnlabError, match="stride=1.5 is not an integer"):
        conv2d(X, W, stride=1.5)


def test_same_padding_helper_consistent_with_conv():
    assert same_padding(4, 3) == (1, 1)
    assert conv2d(X, W, "same").shape == (4, 4)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@FAST
@given(n=st.integers(1, 12), m=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_same_keeps_the_input_length_as_scipy_also_for_long_kernels(n, m, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(m)
    got = conv1d(x, w, "same")
    assert got.shape == (n,)  # numpy.convolve returns max(n, m) values instead
    close(got, scipy.signal.convolve(x, w, "same", method="direct"), x, w)
    assert np.convolve(x, w, "same").shape == (max(n, m),)
    if m <= n:
        close(got, np.convolve(x, w, "same"), x, w)
    # correlation's 'same' is torch's (an odd extra zero after), not SciPy's for even kernels
    expected = torch.nn.functional.conv1d(
        torch.from_numpy(x)[None, None], torch.from_numpy(w)[None, None], padding="same"
    )[0, 0].numpy()
    close(correlate1d(x, w, "same"), expected, x, w)
    if m % 2:
        close(correlate1d(x, w, "same"), scipy.signal.correlate(x, w, "same"), x, w)


@FAST
@given(
    n=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    m=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    seed=st.integers(0, 2**16),
)
def test_valid_swaps_a_larger_kernel_as_numpy_and_scipy(n, m, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(m)
    close(conv1d(x[0], w[0], "valid"), np.convolve(x[0], w[0], "valid"), x, w)
    close(correlate1d(x[0], w[0], "valid"), np.correlate(x[0], w[0], "valid"), x, w)
    pairs = ((conv2d, scipy.signal.convolve2d), (correlate2d, scipy.signal.correlate2d))
    for fn, scipy_fn in pairs:
        try:
            expected = scipy_fn(x, w, "valid")
        except ValueError:  # neither fits inside the other
            with pytest.raises(CnnlabError, match="larger than the padded input"):
                fn(x, w, "valid")
            continue
        close(fn(x, w, "valid"), expected, x, w)
        xi, wi = np.rint(x * 10).astype(int), np.rint(w * 10).astype(int)
        assert fn(xi, wi, "valid").tolist() == scipy_fn(xi, wi, "valid").tolist()


def test_scipy_reference_values():
    """Worked values from SciPy's own convolution tests."""
    assert conv1d([3, 4, 5, 6, 5, 4], [1, 2, 3], "full").tolist() == [3, 10, 22, 28, 32, 32, 23, 12]
    assert conv1d([3, 4, 5], [1, 2, 3, 4], "same").tolist() == [10, 22, 34]
    assert conv1d([1, 2, 3, 6, 5, 3], [2, 3, 4, 5, 3, 4, 2, 2, 1]).tolist() == [70, 78, 73, 65]
    assert conv1d([2, 3, 4, 5, 3, 4, 2, 2, 1], [1, 2, 3, 6, 5, 3]).tolist() == [70, 78, 73, 65]
    long = [1, 4, 3, 4, 5, 6, 7, 4, 3, 2, 1, 1, 3]
    assert conv1d([1, 2, 3, 3, 1, 2], long, "same").tolist() == [57, 61, 63, 57, 45, 36]
    e, f = [[1, 2, 3], [3, 4, 5]], [[2, 3, 4, 5, 6, 7, 8], [4, 5, 6, 7, 8, 9, 10]]
    assert (
        conv2d(e, f, "valid").tolist() == conv2d(f, e, "valid").tolist() == [[62, 80, 98, 116, 134]]
    )
    assert conv2d(e, f, "same").tolist() == [[22, 28, 34], [80, 98, 116]]
    b = [[2, 3, 4], [4, 5, 6]]
    full = [[2, 7, 16, 17, 12], [10, 30, 62, 58, 38], [12, 31, 58, 49, 30]]
    assert conv2d(e, b, "full").tolist() == full
    fill = [[24, 26, 31, 34, 32], [28, 40, 62, 64, 52], [32, 46, 67, 62, 48]]
    assert conv2d(e, b, "full", padding_mode="constant", fillvalue=1).tolist() == fill
    wrap = [[80, 80, 74, 80, 80], [68, 68, 62, 68, 68], [80, 80, 74, 80, 80]]
    assert conv2d(e, b, "full", padding_mode="circular").tolist() == wrap
    symm = [[34, 30, 44, 62, 66], [52, 48, 62, 80, 84], [82, 78, 92, 110, 114]]
    assert conv2d(e, b, "full", padding_mode="symmetric").tolist() == symm
    # a kernel longer than the image: the boundary is extended more than once
    image, ones = [[2.0, -1.0, 3.0, 4.0]], np.ones((1, 21))
    for fn in (conv2d, correlate2d):
        assert fn(image, ones, "same", padding_mode="symmetric").tolist() == [[37, 42, 44, 45]]
        assert fn(image, ones, "same", padding_mode="circular").tolist() == [[43, 44, 42, 39]]
    with pytest.raises(CnnlabError):  # neither array fits inside the other
        conv2d(np.arange(1, 7).reshape(2, 3), np.arange(-6, 0).reshape(3, 2), "valid")
