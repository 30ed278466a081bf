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


@pytest.mark.parametrize("name", ["tutorial_cnn", "speednet", "fastnet", "model_b"])
def test_fused_inference_fp32_matches_eager(name):
    from cnnlab.models import create_model

    torch.manual_seed(0)
    model = create_model(name)
    model.train()  # BN models: the fused graph must use running statistics, like eval()
    x = torch.randn(64, 1, 28, 28)
    fused = infer(model, x, batch_size=32, fuse=True, channels_last=True)
    assert model.training  # mode restored
    assert model.conv1.weight.is_contiguous() if hasattr(model, "conv1") else True  # not NHWC'd
    eager = infer(model, x, batch_size=32)
    assert torch.allclose(fused, eager, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("bf16", "channels_last"), [(True, True), (False, False)])
def test_fused_inference_agrees_and_is_frozen(bf16, channels_last):
    from cnnlab.engine.evaluate import fused_inference
    from cnnlab.models import create_model

    torch.manual_seed(0)
    model = create_model("tutorial_cnn").eval()
    x = torch.randn(256, 1, 28, 28)
    fused = fused_inference(model, x[:128], bf16=bf16, channels_last=channels_last)
    got = infer(fused, x, batch_size=128, channels_last=channels_last)
    with torch.no_grad():
        ref = model(x)
    assert (got.argmax(1) == ref.argmax(1)).float().mean() >= (0.97 if bf16 else 1.0)
    assert (got - ref).abs().max() < (0.05 if bf16 else 1e-4) * ref.abs().max()
    with torch.no_grad():  # the graph holds a frozen copy of the weights
        for p in model.parameters():
            p.zero_()
    assert torch.equal(infer(fused, x, batch_size=128, channels_last=channels_last), got)


def test_evaluate_fused_traces_once_and_matches(monkeypatch):
    import importlib

    from cnnlab.data import ArrayDataset, Normalizer
    from cnnlab.models import create_model

    ev = importlib.import_module("cnnlab.engine.evaluate")  # the package re-exports evaluate()
    torch.manual_seed(0)
    model = create_model("speednet").eval()
    images = torch.randint(0, 256, (300, 1, 28, 28), dtype=torch.uint8)
    norm = Normalizer("meanstd").fit(images)
    with torch.no_grad():
        labels = model(norm(images)).argmax(1)
    data = ArrayDataset(images, labels, tuple("0123456789"))
    calls = []
    real = ev.fused_inference
    monkeypatch.setattr(ev, "fused_inference", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = ev.evaluate(model, data, norm, batch_size=20, fuse=True, channels_last=True)
    assert len(calls) == 1  # one trace for all 2 chunks of 10 batches
    assert result.accuracy == 1.0
