"""Every registered model: forward/backward for 1/3 channels and sizes 28/32, rebuild, features."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from cnnlab.errors import CnnlabError
from cnnlab.models import CnnlabModel, create_model, list_models

MODELS = list_models()


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", MODELS)
def test_forward_backward(name, channels, size):
    torch.manual_seed(0)
    model = create_model(name, in_channels=channels, num_classes=7, input_size=size)
    assert isinstance(model, CnnlabModel)
    x = torch.randn(2, channels, size, size, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 6])).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", MODELS)
def test_no_softmax_inside(name):
    """Logits, not probabilities: rows do not sum to 1 and can be negative."""
    torch.manual_seed(1)
    model = create_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(8, 1, 28, 28))
    assert not torch.allclose(out.sum(1), torch.ones(8), atol=1e-3)
    assert not any(isinstance(m, (torch.nn.Softmax, torch.nn.LogSoftmax)) for m in model.modules())


@pytest.mark.parametrize("name", MODELS)
def test_rebuild_from_cnnlab_args(name):
    model = create_model(name, in_channels=3, num_classes=5, input_size=(32, 30))
    args = model.cnnlab_args
    assert args["name"] == name and args["input_size"] == [32, 30]
    # survives JSON and YAML (config files, checkpoints) unchanged
    assert json.loads(json.dumps(args)) == args
    assert yaml.safe_load(yaml.safe_dump(args)) == args
    clone = create_model(**args)
    assert clone.cnnlab_args == args
    a, b = model.state_dict(), clone.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    clone.load_state_dict(a)
    x = torch.randn(2, 3, 32, 30)
    assert torch.allclose(model.eval()(x), clone.eval()(x))


@pytest.mark.parametrize("name", MODELS)
def test_feature_layers_and_features(name):
    model = create_model(name).eval()
    layers = model.feature_layers()
    assert all(
        isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for _, m in layers
    )
    assert dict(model.named_modules()).keys() >= {n for n, _ in layers}
    feats = model.forward_features(torch.zeros(1, 1, 28, 28))
    if name == "mlp":
        assert layers == [] and feats.ndim == 2
    else:
        assert layers and feats.ndim == 4  # last conv feature map, before flatten


def test_feature_layers_in_forward_order():
    model = create_model("fashion_cnn")
    seen: list[str] = []
    for lname, module in model.feature_layers():
        module.register_forward_hook(lambda *_, n=lname: seen.append(n))
    model(torch.zeros(1, 1, 28, 28))
    assert seen == [n for n, _ in model.feature_layers()]
    assert seen == ["conv1", "pool1", "conv2", "conv3", "pool2", "conv4", "conv5", "pool3"]


@pytest.mark.parametrize("name", [n for n in MODELS if n != "mlp"])
def test_input_too_small(name):
    with pytest.raises(CnnlabError, match=rf"input_size=2x2 is too small for {name}"):
        create_model(name, input_size=2)


def test_parameter_counts():
    counts = {n: sum(p.numel() for p in create_model(n).parameters()) for n in MODELS}
    assert counts["tutorial_cnn"] == 93_322
    assert counts["fashion_cnn"] == 1_413_834  # Keras's summary of notebook 004's model
    assert counts["lenet5"] == 61_706  # LeCun et al. 1998
    assert counts["mlp"] == 535_818  # "over half a million parameters" (notebook 001)
    assert counts["model_c"] == 16 * 25 + 16 + 32 * 16 * 25 + 32 + 512 * 10 + 10


def test_fastnet_options_and_channels_last():
    model = create_model("fastnet", widths=[8, 16], activation="relu", logit_scale=2)
    assert model.cnnlab_args["widths"] == [8, 16] and model.cnnlab_args["logit_scale"] == 2
    assert model.forward_features(torch.zeros(1, 1, 28, 28)).shape == (1, 16, 7, 7)
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    assert model(x).shape == (4, 10)
    with pytest.raises(CnnlabError, match=r"widths=\[\] must be a non-empty list"):
        create_model("fastnet", widths=[])
    with pytest.raises(CnnlabError, match="activation='tanh' must be one of gelu, relu"):
        create_model("fastnet", activation="tanh")


def test_fastnet_depth_adds_convs_at_the_pooled_size():
    model = create_model("fastnet", widths=[8, 16], depth=3)
    stage = model.stage2
    assert [n for n, _ in stage.named_children()] == [
        "conv", "pool", "bn", "act", "conv2", "bn2", "act2", "conv3", "bn3", "act3"
    ]  # fmt: skip
    assert stage.conv3.weight.shape == (16, 16, 3, 3)
    assert model.forward_features(torch.zeros(2, 1, 28, 28)).shape == (2, 16, 7, 7)
    shallow = sum(p.numel() for p in create_model("fastnet", widths=[8, 16]).parameters())
    extra = 2 * (8 * 8 * 9 + 2 * 8) + 2 * (16 * 16 * 9 + 2 * 16)  # conv + BN, twice per stage
    assert sum(p.numel() for p in model.parameters()) == shallow + extra
    with pytest.raises(CnnlabError, match="depth=0 must be an integer >= 1"):
        create_model("fastnet", depth=0)


@pytest.mark.parametrize("bf16", [False, True])
def test_tutorial_pool_first_is_the_same_function_bit_for_bit(bf16):
    """Max pool and ReLU commute: pool_first changes the cost, never the values or gradients."""
    torch.manual_seed(0)
    plain = create_model("tutorial_cnn", dropout=0.0)
    fast = create_model("tutorial_cnn", dropout=0.0, pool_first=True)
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(16, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,))
    logits = []
    for model in (plain, fast):
        model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits.append(model(x))
        torch.nn.functional.cross_entropy(logits[-1].float(), y).backward()
    assert torch.equal(logits[0], logits[1])
    for (name, p), q in zip(plain.named_parameters(), fast.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name
    with pytest.raises(CnnlabError, match="pool_first"):
        create_model("tutorial_cnn", pool_first="yes")


def test_speednet_logits_do_not_depend_on_memory_format():
    """Its head flattens in NHWC order: the same logits for NCHW and channels_last inputs."""
    torch.manual_seed(0)
    model = create_model("speednet").eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        nchw = model(x)
        model.to(memory_format=torch.channels_last)
        nhwc = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(nchw, nhwc, rtol=1e-5, atol=1e-5)
