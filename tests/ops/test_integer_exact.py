"""Integer and boolean convolution: exact against Python-int / int64 references, or one error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import conv1d, conv2d, correlate1d, correlate2d

FAST = settings(max_examples=60, deadline=None)


def exact_correlate2d(x, k, pads, stride, dilation):
    """Python-int loops, written independently of cnnlab: the exact definition."""
    x = [[int(v) for v in row] for row in np.asarray(x, dtype=object)]
    k = [[int(v) for v in row] for row in np.asarray(k, dtype=object)]
    (t, b), (left, r) = pads
    h, w = len(x) + t + b, len(x[0]) + left + r

    def at(i, j):
        i, j = i - t, j - left
        return x[i][j] if 0 <= i < len(x) and 0 <= j < len(x[0]) else 0

    rows = (h - dilation[0] * (len(k) - 1) - 1) // stride[0] + 1
    cols = (w - dilation[1] * (len(k[0]) - 1) - 1) // stride[1] + 1
    return [
        [
            sum(
                at(i * stride[0] + a * dilation[0], j * stride[1] + c * dilation[1]) * k[a][c]
                for a in range(len(k))
                for c in range(len(k[0]))
            )
            for j in range(cols)
        ]
        for i in range(rows)
    ]


def test_products_above_2_53_are_exact():
    # float64 would give ...917440: the product 2**54 + 2**28 + 1 has no float64 form
    assert conv1d([2**27 + 1], [2**27 + 1]).tolist() == [(2**27 + 1) ** 2]
    assert conv1d([2**27 + 1], [2**27 + 1]).dtype == np.int64
    big = [2**31 + 7, -(2**30) - 3, 2**29 + 11]
    assert (
        conv1d(big, big, "full").tolist()
        == np.convolve(np.array(big, dtype=object), np.array(big, dtype=object)).tolist()
    )


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_method_never_rounds_integers(method):
    x, w = [2**40 + 1, 3, -(2**41) + 5], [2**12 + 1, -1]
    expected = np.convolve(np.array(x, dtype=object), np.array(w, dtype=object))
    assert conv1d(x, w, "full", method=method).tolist() == expected.tolist()


def test_results_beyond_int64_raise_one_line():
    with pytest.raises(CnnlabError, match=f"^the exact integer result {2**64} does not fit"):
        conv1d([2**62], [4])
    with pytest.raises(CnnlabError) as info:
        conv2d(np.full((2, 2), 2**40), np.full((2, 2), 2**30), "full")
    assert "does not fit in int64" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(CnnlabError, match=str(-(2**63) - 1)):
        correlate1d([-(2**63), 1], [1, -1])  # -2**63 - 1: one below the int64 minimum


def test_python_int_path_when_int64_could_overflow_but_the_result_fits():
    # max|x| * sum|w| = 2**63: partial sums may leave int64, the results do not
    x = np.array([2**62, 2**62 - 1, -(2**62)], dtype=np.int64)
    got = conv1d(x, [1, -1], "valid")
    expected = np.convolve(x.astype(object), np.array([1, -1], dtype=object), "valid")
    assert got.dtype == np.int64 and got.tolist() == expected.tolist()
    u = np.array([2**63 + 5, 2**63 + 2], dtype=np.uint64)  # beyond int64, difference fits
    assert conv1d(u, [1, -1]).tolist() == [-3]


@FAST
@given(
    n=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    m=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    pad=st.tuples(*[st.integers(0, 3)] * 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    bits=st.sampled_from([4, 20, 31, 40, 62]),
    flip=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_integer_conv2d_equals_python_ints(n, m, pad, stride, dilation, bits, flip, seed):
    pads = ((pad[0], pad[1]), (pad[2], pad[3]))
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, m, strict=True)]
    if any(span > nn + a + b for span, nn, (a, b) in zip(spans, n, pads, strict=True)):
        return  # kernel larger than the padded input: covered by the error tests
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**bits), 2**bits, n)
    w = rng.integers(-(2**bits), 2**bits, m)
    k = w[::-1, ::-1] if flip else w
    expected = exact_correlate2d(x, k, pads, stride, dilation)
    fn = conv2d if flip else correlate2d
    fits = all(-(2**63) <= v < 2**63 for row in expected for v in row)
    if not fits:
        with pytest.raises(CnnlabError, match="does not fit in int64"):
            fn(x, w, pads, stride, dilation)
        return
    got = fn(x, w, pads, stride, dilation)
    assert got.dtype == np.int64 and got.tolist() == expected


@FAST
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 12),
    stride=st.integers(1, 4),
    dilation=st.integers(1, 3),
    mode=st.sampled_from(["full", "same", "valid", 0, 2, (1, 3)]),
    bits=st.sampled_from([7, 29, 45]),
    seed=st.integers(0, 2**16),
)
def test_integer_conv1d_equals_numpy_on_python_ints(n, m, stride, dilation, mode, bits, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.integers(-(2**bits), 2**bits, n), rng.integers(-(2**bits), 2**bits, m)
    span = dilation * (m - 1) + 1
    wd = np.zeros(span, dtype=object)
    wd[::dilation] = w.astype(object)
    # the exact full convolution with the dilated kernel, then cnnlab's window of it
    full = np.convolve(x.astype(object), wd)
    if mode == "full":
        before, after = span - 1, span - 1
    elif mode == "same":
        total = span - 1
        before, after = total - total // 2, total // 2  # true convolution: extra one first
        if stride > 1:
            total = max((-(-n // stride) - 1) * stride + span - n, 0)
            before, after = total // 2, total - total // 2
    elif mode == "valid":
        before = after = 0
    else:
        before, after = (mode, mode) if isinstance(mode, int) else mode
    if mode == "valid" and stride == dilation == 1 and m > n:  # swapped, as numpy does
        expected = np.convolve(x.astype(object), w.astype(object), "valid")
        assert conv1d(x, w, mode, stride, dilation).tolist() == expected.tolist()
        return
    if n + before + after < span:
        with pytest.raises(CnnlabError, match="larger than the padded input"):
            conv1d(x, w, mode, stride, dilation)
        return
    padded = np.concatenate([np.zeros(before, object), x.astype(object), np.zeros(after, object)])
    valid = np.convolve(padded, wd, "full")[span - 1 : len(padded)]
    expected = valid[::stride]
    if any(not -(2**63) <= v < 2**63 for v in expected):
        with pytest.raises(CnnlabError, match="does not fit in int64"):
            conv1d(x, w, mode, stride, dilation)
        return
    got = conv1d(x, w, mode, stride, dilation)
    assert got.dtype == np.int64 and got.tolist() == expected.tolist()
    if mode == "full" and stride == 1:
        assert got.tolist() == full.tolist()
    if mode in ("full", "same", "valid") and stride == dilation == 1 and bits < 30 and m <= n:
        assert got.tolist() == np.convolve(x, w, mode).tolist()  # numpy's int64 convolve
        assert correlate1d(x, w, mode).tolist() == np.correlate(x, w, mode).tolist()


@pytest.mark.parametrize("xd", [np.uint8, np.int16, np.int32, np.uint32, np.int64, bool])
def test_integer_dtypes_equal_scipy_int64(xd):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2 if xd is bool else 200, (33, 47)).astype(xd)
    w = rng.integers(-9, 9, (5, 4))
    for mode in ("full", "same", "valid"):
        got = conv2d(x, w, mode)
        assert got.dtype == np.int64
        expected = scipy.signal.convolve2d(x.astype(np.int64), w, mode)
        assert np.array_equal(got, expected)


def test_booleans_count_overlaps_and_threshold_to_numpy():
    a, b = [True, True, False], [True, True]
    got = conv1d(a, b, "full")
    assert got.tolist() == [1, 2, 1, 0]  # counted, as integers 0/1
    assert (got > 0).tolist() == np.convolve(a, b).tolist()  # numpy: logical OR of ANDs
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, w = rng.random(rng.integers(1, 20)) < 0.5, rng.random(rng.integers(1, 6)) < 0.5
        counted = conv1d(x, w, "full")
        assert counted.tolist() == np.convolve(x.astype(int), w.astype(int)).tolist()
        assert np.array_equal(counted > 0, np.convolve(x, w))


def test_big_integer_image_stays_integer_and_exact():
    rng = np.random.default_rng(2)
    x = rng.integers(-(2**31), 2**31, (300, 200))
    w = rng.integers(-(2**20), 2**20, (7, 5))
    got = conv2d(x, w, "same")
    assert got.dtype == np.int64
    assert np.array_equal(got, scipy.signal.convolve2d(x, w, "same"))
    assert np.array_equal(conv2d(x, w, "full", 2), scipy.signal.convolve2d(x, w)[::2, ::2])


def test_python_ints_beyond_int64_are_taken_exactly():
    x = [2**70, -(2**70) + 3, 2**70 - 1]
    expected = np.convolve(np.array(x, dtype=object), np.array([1, 1], dtype=object), "valid")
    assert conv1d(x, [1, 1]).tolist() == expected.tolist() == [3, 2]
    assert conv2d([[2**70, 7]], [[1, 0]]).tolist() == [[7]]
    assert conv1d(np.array([1, 2], dtype=object), [1, 1], "full").tolist() == [1, 3, 2]
    with pytest.raises(CnnlabError, match="does not fit in int64"):
        conv1d([2**70], [1])
    got = conv1d([2**70, 5], [0.5, 1.0], "full")  # meets a float: a float64 result
    assert got.dtype == np.float64 and got[-1] == 5.0


@pytest.mark.parametrize("bad", [["a"], [1.5, 2**70], [True, 2**70]])
def test_object_inputs_that_are_not_ints_are_refused(bad):
    with pytest.raises(CnnlabError, match="expected real numbers"):
        conv1d(bad, [1])


def test_constant_padding_keeps_integers_exact_beyond_int64():
    u = np.array([2**63 + 1, 2**63], dtype=np.uint64)
    got = conv1d(u, [1, -1], (0, 1), padding_mode="constant", fillvalue=2**63 + 5)
    assert got.tolist() == [-1, 5]  # (2**63) - (2**63 + 1), (2**63 + 5) - 2**63
    got = conv1d([1, 2], [1, -1], (0, 1), padding_mode="constant", fillvalue=2**62 + 2)
    assert got.tolist() == [1, 2**62]
    with pytest.raises(CnnlabError, match="fillvalue=True is not a finite number"):
        conv1d([1, 2], [1, 1], 1, padding_mode="constant", fillvalue=True)
