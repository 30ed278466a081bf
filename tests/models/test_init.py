"""Whitening initialisation of the first conv: unit-variance, decorrelated +/- filter pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.models.init import first_conv_input, patch_moments, patch_whitening, whiten_first_conv


def _images(n=512, seed=0):
    """Smooth, correlated images (blurred noise): neighbouring pixels are far from independent."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=gen)
    return F.avg_pool2d(x, 5, stride=1, padding=2) * 3 + 0.5


def _outputs(conv, x):
    with torch.no_grad():
        y = conv(x)  # (N, C, H, W)
    return y.permute(1, 0, 2, 3).reshape(conv.out_channels, -1).double()


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_speednet_first_conv_is_whitened(memory_format):
    torch.manual_seed(0)
    model = create_model("speednet").to(memory_format=memory_format)
    before = {k: v.clone() for k, v in model.state_dict().items() if "bn" in k}
    x = _images()
    conv = whiten_first_conv(model, x)
    assert conv is model.conv1
    inner = F.pixel_unshuffle(x, 2)  # what conv1 sees
    y = _outputs(conv, inner)
    pairs = conv.out_channels // 2  # 16 pairs from 36-dim patches
    cov = torch.cov(y[:pairs])
    # unit variance and decorrelated (eps regularises the smallest directions a little)
    assert torch.allclose(torch.diagonal(cov), torch.ones(pairs, dtype=cov.dtype), atol=0.02)
    off = cov - torch.diag(torch.diagonal(cov))
    assert off.abs().max() < 0.02
    assert torch.equal(conv.weight[pairs:], -conv.weight[:pairs])  # the +/- pairs
    # batch norm untouched by the capture pass
    for k, v in model.state_dict().items():
        if k in before:
            assert torch.equal(v, before[k]), k


def test_tutorial_first_conv_keeps_extra_filters_and_centres_bias():
    torch.manual_seed(0)
    model = create_model("tutorial_cnn")
    init = model.conv1.weight.detach().clone()
    x = _images()
    conv = whiten_first_conv(model, x)
    # 1 channel x 3x3 = 9 principal directions -> 9 pairs; filters 18..31 keep their init
    assert torch.equal(conv.weight[18:], init[18:])
    assert not torch.equal(conv.weight[:18], init[:18])
    y = _outputs(conv, x)
    assert y.mean(1).abs().max() < 1e-3  # the bias centres every filter's output
    assert torch.allclose(y[:9].var(1), torch.ones(9, dtype=y.dtype), atol=0.05)


def test_whitening_matches_numpy_eigendecomposition():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 5)) @ rng.normal(size=(5, 5))
    cols = torch.from_numpy(x.T[None].astype(np.float32))  # (1, D, L), like F.unfold
    mean, cov = patch_moments(cols)
    assert np.allclose(mean.numpy(), x.mean(0), atol=1e-4)
    assert np.allclose(cov.numpy(), np.cov(x.T, bias=True), rtol=1e-3, atol=1e-3)
    lam, rows = patch_whitening(cov.double().numpy(), eps=0.0)
    assert np.allclose(lam, np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1], rtol=1e-3)
    white = (x - x.mean(0)) @ rows.T
    assert np.allclose(np.cov(white.T, bias=True), np.eye(5), atol=1e-3)


def test_first_conv_input_stops_at_the_first_conv_and_errors():
    model = create_model("speednet")
    conv, seen = first_conv_input(model, torch.zeros(2, 1, 28, 28))
    assert conv is model.conv1 and seen.shape == (2, 4, 14, 14)
    with pytest.raises(CnnlabError, match="no Conv2d"):
        whiten_first_conv(create_model("mlp"), torch.zeros(2, 1, 28, 28))
