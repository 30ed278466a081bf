"""Pooling options torch users expect: ceil_mode, dilation, count_include_pad, divisor_override.

Every configuration is run through torch too: where torch returns a result we must return the
same one, where torch refuses we must raise a one-line CnnlabError.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import avg_pool2d, max_pool2d, pool_output_size

FAST = settings(max_examples=150, deadline=None)
pairs = st.tuples


def _torch_or_none(fn):
    try:
        return fn().numpy()
    except RuntimeError:
        return None


def _same_or_both_refuse(expected, call):
    if expected is None:
        with pytest.raises(CnnlabError) as info:
            call()
        assert "\n" not in str(info.value)
        return
    got = call()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@FAST
@given(
    k=pairs(st.integers(1, 5), st.integers(1, 5)),
    stride=st.one_of(st.none(), pairs(st.integers(1, 4), st.integers(1, 4))),
    pad=pairs(st.integers(0, 3), st.integers(0, 3)),
    dilation=pairs(st.integers(1, 3), st.integers(1, 3)),
    size=pairs(st.integers(1, 11), st.integers(1, 11)),
    ceil_mode=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_max_pool_equals_torch(k, stride, pad, dilation, size, ceil_mode, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, *size))
    expected = _torch_or_none(
        lambda: F.max_pool2d(torch.from_numpy(x), k, stride, pad, dilation, ceil_mode)
    )
    _same_or_both_refuse(expected, lambda: max_pool2d(x, k, stride, pad, dilation, ceil_mode))


@FAST
@given(
    k=pairs(st.integers(1, 5), st.integers(1, 5)),
    stride=st.one_of(st.none(), pairs(st.integers(1, 4), st.integers(1, 4))),
    pad=pairs(st.integers(0, 3), st.integers(0, 3)),
    size=pairs(st.integers(1, 11), st.integers(1, 11)),
    ceil_mode=st.booleans(),
    count_include_pad=st.booleans(),
    divisor_override=st.one_of(st.none(), st.integers(1, 7)),
    seed=st.integers(0, 2**16),
)
def test_avg_pool_equals_torch(
    k, stride, pad, size, ceil_mode, count_include_pad, divisor_override, seed
):
    x = np.random.default_rng(seed).standard_normal((2, *size))
    expected = _torch_or_none(
        lambda: F.avg_pool2d(
            torch.from_numpy(x), k, stride, pad, ceil_mode, count_include_pad, divisor_override
        )
    )
    _same_or_both_refuse(
        expected,
        lambda: avg_pool2d(x, k, stride, pad, ceil_mode, count_include_pad, divisor_override),
    )


def test_ceil_mode_drops_a_window_that_would_start_in_the_right_padding():
    # n=4, k=2, s=2, p=1: ceil((4 + 2 - 2) / 2) + 1 = 3 windows; a 4th would start at 6 > n + p
    x = np.arange(16.0).reshape(4, 4)
    assert pool_output_size(4, 2, 1, 2, ceil_mode=True) == 3
    expected = F.max_pool2d(torch.from_numpy(x)[None], 2, 2, 1, ceil_mode=True)[0].numpy()
    np.testing.assert_array_equal(max_pool2d(x, 2, 2, 1, ceil_mode=True), expected)
    # n=5, k=2, s=2, p=1: the 4th window starts at index 6 = n + p, in the padding: dropped
    assert pool_output_size(5, 2, 1, 2, ceil_mode=True) == 3
    assert F.max_pool2d(torch.zeros(1, 5, 5), 2, 2, 1, ceil_mode=True).shape[-1] == 3


def test_integer_max_pool_keeps_dtype_with_padding_and_ceil_mode():
    x = np.arange(-12, 13).reshape(5, 5)
    got = max_pool2d(x, 3, 2, 1, ceil_mode=True)
    assert got.dtype == x.dtype
    expected = F.max_pool2d(torch.from_numpy(x.astype(float))[None], 3, 2, 1, ceil_mode=True)
    assert got.tolist() == expected[0].numpy().astype(int).tolist()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: max_pool2d(np.ones((4, 4)), 3, padding=2), "padding=2 must be at most half"),
        (lambda: max_pool2d(np.ones((4, 4)), 2, dilation=0), "dilation=0 must be >= 1"),
        (lambda: max_pool2d(np.ones((2, 2)), 2, dilation=2), "dilation 2 makes it span 3"),
        (lambda: avg_pool2d(np.ones((4, 4)), 2, divisor_override=0), "divisor_override=0"),
        (lambda: avg_pool2d(np.ones((2, 2)), 3, stride=1, ceil_mode=True), "kernel of size 3"),
    ],
)
def test_pool_option_errors(call, message):
    with pytest.raises(CnnlabError, match=message):
        call()
