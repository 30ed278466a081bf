"""Registry behaviour: names, errors, rebuild from cnnlab_args, notebook parameter shapes."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model, list_models, model_description


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_names():
    expected = {"tutorial_cnn", "model_a", "model_b", "model_c"}
    assert expected <= set(list_models())
    assert list_models() == sorted(list_models())
    assert all(model_description(n) for n in list_models())


def test_unknown_name_lists_valid_names():
    with pytest.raises(CnnlabError) as err:
        create_model("resnet9000")
    msg = str(err.value)
    assert "'resnet9000'" in msg
    for name in list_models():
        assert name in msg
    assert "\n" not in msg


def test_unknown_option_is_an_error():
    with pytest.raises(CnnlabError, match=r"unknown option\(s\) widht for model 'model_a'"):
        create_model("model_a", widht=3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_channels": 0}, "in_channels=0"),
        ({"num_classes": 2.5}, "num_classes=2.5"),
        ({"input_size": (28,)}, r"input_size=\(28,\)"),
        ({"input_size": 0}, "input_size=0"),
        ({"dropout": 1.5}, "dropout=1.5"),
        ({"hidden": -1}, "hidden=-1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        create_model("tutorial_cnn", **kwargs)


def test_input_too_small_names_the_size():
    with pytest.raises(CnnlabError, match=r"input_size=8x8 is too small for tutorial_cnn"):
        create_model("tutorial_cnn", input_size=8)


def test_tutorial_cnn_matches_notebook_000():
    model = create_model("tutorial_cnn")
    sizes = [m.weight.numel() + m.bias.numel() for m in model.modules() if hasattr(m, "bias")]
    assert sizes == [320, 18_496, 36_928, 36_928, 650]
    assert n_params(model) == 93_322
    assert model.forward_features(torch.zeros(1, 1, 28, 28)).shape == (1, 64, 3, 3)
    # dropout sits between the hidden Dense layer and the output layer (notebook 000)
    names = [n for n, _ in model.named_children()]
    assert names[-3:] == ["relu4", "dropout", "fc2"]


def test_model_a_parameter_shapes_match_notebook_002():
    shapes = [list(p.shape) for p in create_model("model_a").parameters()]
    assert shapes == [[16, 1, 5, 5], [16], [32, 16, 5, 5], [32], [10, 1568], [10]]


def test_model_b_and_c_pooling_and_padding():
    b, c = create_model("model_b"), create_model("model_c")
    assert isinstance(b.pool1, torch.nn.AvgPool2d) and b.cnn1.padding == (2, 2)
    assert c.cnn1.padding == (0, 0) and c.fc1.in_features == 32 * 4 * 4
    assert isinstance(create_model("model_c", pool="max").pool2, torch.nn.MaxPool2d)


def test_flatten_size_follows_input_size():
    model = create_model("tutorial_cnn", input_size=(32, 40))
    # 32 -> 30 -> 15 -> 13 -> 6 -> 4 ; 40 -> 38 -> 19 -> 17 -> 8 -> 6
    assert model.fc1.in_features == 64 * 4 * 6
    assert model(torch.zeros(2, 1, 32, 40)).shape == (2, 10)
    assert model.cnnlab_args["input_size"] == [32, 40]


@pytest.mark.parametrize(
    "module",
    ["cnnlab.models", "cnnlab.models.layers", "cnnlab.models.registry", "cnnlab.models.summary"],
)
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
