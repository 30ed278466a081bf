"""Metrics from logits against scikit-learn; infer restores the train/eval mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from cnnlab.engine.evaluate import infer, metrics_from_logits


def test_metrics_match_sklearn():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (500,), generator=gen)
    logits = torch.randn(500, 4, generator=gen) + 2.0 * torch.nn.functional.one_hot(labels, 4)
    logits[:, 3] -= 10  # class 3 is never predicted: precision must be 0, not NaN
    result = metrics_from_logits(logits, labels, ("a", "b", "c", "d"))
    pred = logits.argmax(1).numpy()
    p, r, f, s = precision_recall_fscore_support(labels.numpy(), pred, zero_division=0)
    for i, name in enumerate("abcd"):
        got = result.per_class[name]
        assert got["precision"] == pytest.approx(p[i]) and got["recall"] == pytest.approx(r[i])
        assert got["f1"] == pytest.approx(f[i]) and got["support"] == s[i]
    assert np.array_equal(result.confusion, confusion_matrix(labels.numpy(), pred))
    assert result.accuracy == pytest.approx((pred == labels.numpy()).mean())
    assert result.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())


def test_infer_batches_and_restores_mode():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 3))
    model.train()
    x = torch.randn(25, 1, 2, 2)
    out = infer(model, x, batch_size=7)
    assert out.shape == (25, 3) and model.training
    with torch.no_grad():
        model.eval()
        assert torch.allclose(out, model(x), atol=1e-6)
