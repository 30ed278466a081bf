"""conv2d_nchw and pooling against torch (float64) and the loop references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import (
    avg_pool2d,
    conv2d_nchw,
    depth_pool,
    global_avg_pool2d,
    global_max_pool2d,
    max_pool2d,
)
from cnnlab.ops import reference as ref

FAST = settings(max_examples=20, deadline=None)


@FAST
@given(
    groups=st.integers(1, 3),
    cg=st.integers(1, 2),
    og=st.integers(1, 2),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    size=st.tuples(st.integers(7, 11), st.integers(7, 11)),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv2d_nchw_equals_torch(groups, cg, og, k, stride, dilation, padding, size, bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, groups * cg, *size))
    w = rng.standard_normal((groups * og, cg, *k))
    b = rng.standard_normal(groups * og) if bias else None
    expected = F.conv2d(
        torch.from_numpy(x),
        torch.from_numpy(w),
        None if b is None else torch.from_numpy(b),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    ).numpy()
    got = conv2d_nchw(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("k", [(3, 3), (2, 4), (5, 2)])
def test_conv2d_nchw_same_equals_torch(k):
    rng = np.random.default_rng(sum(k))
    x, w = rng.standard_normal((1, 3, 9, 10)), rng.standard_normal((4, 3, *k))
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="same").numpy()
    np.testing.assert_allclose(conv2d_nchw(x, w, padding="same"), expected, rtol=1e-10, atol=1e-10)


def test_conv2d_nchw_equals_loop_reference():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((1, 4, 6, 5)), rng.standard_normal((2, 2, 3, 2)), np.ones(2)
    got = conv2d_nchw(x, w, b, stride=(2, 1), padding=1, groups=2)
    expected = ref.conv2d_nchw_loops(x, w, b, (2, 1), ((1, 1), (1, 1)), groups=2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_conv2d_nchw_errors():
    with pytest.raises(CnnlabError, match="groups=2 does not fit input channels 3"):
        conv2d_nchw(np.ones((1, 3, 5, 5)), np.ones((2, 1, 3, 3)), groups=2)
    with pytest.raises(CnnlabError, match=r"bias has shape \(3,\); expected \(2,\)"):
        conv2d_nchw(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), bias=np.ones(3))
    with pytest.raises(CnnlabError, match="stride=0"):
        conv2d_nchw(np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), stride=0)


@FAST
@given(
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    pad=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    size=st.tuples(st.integers(4, 10), st.integers(4, 10)),
    seed=st.integers(0, 2**16),
)
def test_pools_equal_torch(k, stride, pad, size, seed):
    pad = (min(pad[0], k[0] // 2), min(pad[1], k[1] // 2))
    x = np.random.default_rng(seed).standard_normal((2, 3, *size))
    t = torch.from_numpy(x)
    args = {"stride": stride if stride else k, "padding": pad}
    np.testing.assert_allclose(max_pool2d(x, k, stride, pad), F.max_pool2d(t, k, **args).numpy())
    np.testing.assert_allclose(
        avg_pool2d(x, k, stride, pad), F.avg_pool2d(t, k, **args).numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(
        avg_pool2d(x, k, stride, pad, count_include_pad=False),
        F.avg_pool2d(t, k, **args, count_include_pad=False).numpy(),
        rtol=1e-12,
    )
    s = stride if stride else k
    np.testing.assert_allclose(
        max_pool2d(x[0, 0], k, stride, pad), ref.pool2d_loops(x[0, 0], k, s, pad, "max")
    )
    np.testing.assert_allclose(
        avg_pool2d(x[0, 0], k, stride, pad), ref.pool2d_loops(x[0, 0], k, s, pad, "avg"), rtol=1e-12
    )


def test_overlapping_max_pool_and_notebook_shapes():
    x = np.arange(25.0).reshape(5, 5)
    assert max_pool2d(x, 3, 2).tolist() == [[12.0, 14.0], [22.0, 24.0]]  # AlexNet-style 3/2
    assert max_pool2d(np.ones((1, 32, 26, 26)), 2).shape == (1, 32, 13, 13)  # notebook 000
    assert max_pool2d(np.arange(16).reshape(4, 4), 2).tolist() == [[5, 7], [13, 15]]


def test_global_pools():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(global_max_pool2d(x), x.max(axis=(2, 3)))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(global_avg_pool2d(x), F.adaptive_avg_pool2d(t, 1).numpy()[..., 0, 0])
    np.testing.assert_allclose(global_max_pool2d(x), F.adaptive_max_pool2d(t, 1).numpy()[..., 0, 0])


@pytest.mark.parametrize(("size", "stride"), [(3, None), (2, None), (2, 1), (6, None), (4, 2)])
def test_depth_pool_matches_reference(size, stride):
    x = np.random.default_rng(size).standard_normal((2, 5, 4, 6))  # channels last, as notebook 004
    for kind in ("max", "avg"):
        got = depth_pool(x, size, stride, kind=kind)
        np.testing.assert_allclose(got, ref.depth_pool_loops(x, size, stride or size, kind))


def test_depth_pool_notebook_004_and_torch():
    x = np.random.default_rng(0).standard_normal((2, 7, 8, 6))  # (N, H, W, C)
    out = depth_pool(x, 3)  # tf.nn.max_pool(ksize=(1,1,1,3), strides=(1,1,1,3))
    assert out.shape == (2, 7, 8, 2)
    # torch: max_pool3d over a (N, 1, C, H, W) view pools the channel axis
    t = torch.from_numpy(np.moveaxis(x, -1, 1))[:, None]
    expected = F.max_pool3d(t, (3, 1, 1))[:, 0].numpy()
    np.testing.assert_allclose(np.moveaxis(out, -1, 1), expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: max_pool2d(np.ones((4, 4)), 2, 0), "stride=0"),
        (lambda: max_pool2d(np.ones((4, 4)), 2, padding=2), "padding=2 must be at most half"),
        (lambda: max_pool2d(np.ones((2, 2)), 3), "kernel of size 3 is larger"),
        (lambda: max_pool2d(np.ones(4), 2), "at least 2 dimensions"),
        (lambda: depth_pool(np.ones((2, 2, 3)), 4), "depth pool size 4 is larger than the 3"),
        (lambda: depth_pool(np.ones((2, 2, 3)), 2, kind="min"), "kind='min'"),
        (lambda: avg_pool2d(np.array([[np.nan, 1.0]]), 1), "contains nan"),
    ],
)
def test_pool_errors(call, message):
    with pytest.raises(CnnlabError, match=message):
        call()


def test_pooling_refuses_ints_beyond_int64():
    with pytest.raises(CnnlabError, match="beyond int64; only convolution takes such ints"):
        max_pool2d([[2**70, 1]], 1)
