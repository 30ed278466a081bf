"""Activations and losses against torch and notebook 000's worked values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    categorical_cross_entropy,
    cross_entropy_with_logits,
    log_softmax,
    mse,
    relu,
    sigmoid,
    softmax,
    tanh,
)

Z = [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0]  # notebook 000, section 5


def test_softmax_notebook_values():
    # np.exp(z) / np.sum(np.exp(z)) as the notebook computes it
    expected = np.exp(Z) / np.sum(np.exp(Z))
    np.testing.assert_allclose(softmax(Z), expected, rtol=1e-14)
    np.testing.assert_allclose(
        softmax(Z),
        [0.02364054, 0.06426166, 0.1746813, 0.474833, 0.02364054, 0.06426166, 0.1746813],
        atol=5e-8,
    )
    assert softmax(Z).sum() == pytest.approx(1.0, abs=1e-15)


def test_softmax_is_shift_invariant_and_does_not_overflow():
    big = np.array(Z) + 1e4
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_allclose(softmax(big), softmax(Z), rtol=1e-12)
        assert np.all(np.isfinite(log_softmax([1e300, 0.0, -1e300])))
        assert np.all(np.isfinite(log_softmax([1000.0, -1000.0])))


def test_activations_equal_torch():
    x = np.random.default_rng(0).standard_normal((4, 6)) * 30
    t = torch.from_numpy(x)
    np.testing.assert_allclose(softmax(x), torch.softmax(t, -1).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(softmax(x, axis=0), torch.softmax(t, 0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(log_softmax(x), torch.log_softmax(t, -1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(relu(x), torch.relu(t).numpy())
    np.testing.assert_allclose(sigmoid(x), torch.sigmoid(t).numpy(), rtol=1e-12)
    np.testing.assert_allclose(tanh(x), torch.tanh(t).numpy(), rtol=1e-12)
    with np.errstate(over="raise"):
        assert sigmoid([-1000.0, 1000.0]).tolist() == [0.0, 1.0]


def test_mse_notebook_definition_and_torch():
    y_hat, y = np.array([0.1, 0.7, 0.2]), np.array([0.0, 1.0, 0.0])
    assert mse(y_hat, y) == pytest.approx(np.sum((y_hat - y) ** 2) / y.size)  # notebook's MSE
    assert mse(y_hat, y) == pytest.approx(F.mse_loss(torch.tensor(y_hat), torch.tensor(y)).item())
    assert mse(y_hat, y, "sum") == pytest.approx(0.14)
    assert mse(y_hat, y, "none").shape == (3,)


def test_binary_cross_entropy_notebook_and_torch():
    # notebook: -log(yHat) when y == 1, else -log(1 - yHat)
    assert binary_cross_entropy([0.8], [1.0]) == pytest.approx(-np.log(0.8))
    assert binary_cross_entropy([0.8], [0.0]) == pytest.approx(-np.log(0.2))
    rng = np.random.default_rng(1)
    p, y = rng.uniform(0.01, 0.99, 20), rng.integers(0, 2, 20).astype(float)
    expected = F.binary_cross_entropy(torch.tensor(p), torch.tensor(y)).item()
    assert binary_cross_entropy(p, y) == pytest.approx(expected, rel=1e-12)
    # saturated probabilities: torch clamps log at -100, so do we
    assert binary_cross_entropy([0.0, 1.0], [1.0, 0.0]) == pytest.approx(100.0)


def test_bce_with_logits_large_values_and_torch():
    z = np.array([-1e4, -30.0, -1.0, 0.0, 2.5, 40.0, 1e4])
    y = np.array([1.0, 0.0, 1.0, 0.5, 0.0, 1.0, 0.0])
    expected = F.binary_cross_entropy_with_logits(
        torch.tensor(z), torch.tensor(y), reduction="none"
    )
    got = binary_cross_entropy_with_logits(z, y, reduction="none")
    # atol: torch loses digits below 1e-13 (log1p(exp(-30)) = 9.3576e-14, torch 9.237e-14)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12, atol=2e-15)
    assert got[1] == pytest.approx(np.log1p(np.exp(-30.0)), rel=1e-14)
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_categorical_cross_entropy_equals_torch(reduction):
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((8, 5)) * 4
    labels = rng.integers(0, 5, 8)
    onehot = np.eye(5)[labels]
    t = torch.tensor(logits)
    expected = F.cross_entropy(t, torch.tensor(labels), reduction=reduction).numpy()
    for target in (labels, onehot):
        np.testing.assert_allclose(
            cross_entropy_with_logits(logits, target, reduction), expected, rtol=1e-12
        )
        np.testing.assert_allclose(
            categorical_cross_entropy(softmax(logits), target, reduction), expected, rtol=1e-10
        )
    soft = softmax(rng.standard_normal((8, 5)))  # probability targets (label smoothing style)
    expected_soft = F.cross_entropy(t, torch.tensor(soft), reduction=reduction).numpy()
    np.testing.assert_allclose(
        cross_entropy_with_logits(logits, soft, reduction), expected_soft, rtol=1e-12
    )


def test_cross_entropy_huge_logits():
    got = cross_entropy_with_logits([[1e4, 0.0, -1e4]], [1])
    assert got == pytest.approx(1e4)
    assert cross_entropy_with_logits([[1e4, 0.0]], [0]) == 0.0


def test_loss_errors():
    with pytest.raises(CnnlabError, match="class index 7 out of range for 3 classes"):
        cross_entropy_with_logits(np.zeros((2, 3)), [0, 7])
    with pytest.raises(CnnlabError, match="target shape"):
        cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(CnnlabError, match="probabilities must lie in"):
        binary_cross_entropy([1.5], [1.0])
    with pytest.raises(CnnlabError, match="reduction='avg'"):
        mse([1.0], [1.0], "avg")
    with pytest.raises(CnnlabError, match="shape"):
        mse([1.0, 2.0], [1.0])


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 6),
    c=st.integers(1, 6),
    weighted=st.booleans(),
    smoothing=st.one_of(st.sampled_from([0.0, 0.1, 1.0]), st.floats(0.0, 1.0)),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    target_kind=st.sampled_from(["index", "onehot", "soft"]),
    seed=st.integers(0, 2**16),
)
def test_cross_entropy_weight_and_label_smoothing_equal_torch(
    n, c, weighted, smoothing, reduction, target_kind, seed
):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * 3
    labels = rng.integers(0, c, n)
    target = {
        "index": labels,
        "onehot": np.eye(c)[labels],
        "soft": rng.dirichlet(np.ones(c), n),
    }[target_kind]
    weight = rng.random(c) + 0.1 if weighted else None
    expected = F.cross_entropy(
        torch.tensor(logits),
        torch.tensor(target),
        weight=None if weight is None else torch.tensor(weight),
        reduction=reduction,
        label_smoothing=smoothing,
    ).numpy()
    got = cross_entropy_with_logits(logits, target, reduction, weight, smoothing)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    got = categorical_cross_entropy(softmax(logits), target, reduction, weight, smoothing)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_cross_entropy_option_errors():
    with pytest.raises(CnnlabError, match=r"label_smoothing=1.5 must lie in \[0, 1\]"):
        cross_entropy_with_logits(np.zeros((2, 3)), [0, 1], label_smoothing=1.5)
    with pytest.raises(CnnlabError, match=r"weight has shape \(2,\); expected \(3,\)"):
        cross_entropy_with_logits(np.zeros((2, 3)), [0, 1], weight=[1.0, 2.0])
