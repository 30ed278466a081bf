import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.run import as_run as load_run
from cnnlab.viz import save_figure
from cnnlab.viz.features import feature_maps, plot_feature_maps


def test_one_row_per_layer_with_right_channels(trained_run, tmp_path, assert_png):
    fig = plot_feature_maps(trained_run, "test:0", max_channels=4)
    fm = feature_maps(trained_run, "test:0")
    names = [layer.name for layer in fm.layers]
    assert names == ["conv1", "pool1", "conv2", "pool2", "conv3"]
    shapes = [layer.maps.shape for layer in fm.layers]
    assert shapes == [(32, 26, 26), (32, 13, 13), (64, 11, 11), (64, 5, 5), (64, 3, 3)]
    # the first row's maps are the conv1 outputs, recomputed directly
    model = load_run(trained_run).model
    direct = F.conv2d(fm.image.tensor, model.conv1.weight, model.conv1.bias)[0].detach().numpy()
    np.testing.assert_allclose(fm.layers[0].maps, direct, rtol=1e-5, atol=1e-5)
    # pooling rows are the max over 2x2 windows of the conv row after ReLU
    relu = np.maximum(fm.layers[0].maps, 0)
    np.testing.assert_allclose(
        fm.layers[1].maps, relu.reshape(32, 13, 2, 13, 2).max((2, 4)), atol=1e-6
    )
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == [
        "input",
        "conv1\n32@26x26",
        "pool1\n32@13x13",
        "conv2\n64@11x11",
        "pool2\n64@5x5",
        "conv3\n64@3x3",
    ]
    assert len(fig.axes) == 1 + 5 * 4
    assert fm.image.label == 7 and abs(fm.probs.sum() - 1) < 1e-5
    assert_png(save_figure(fig, tmp_path / "features.png"), fig)


def test_untrained_model_array_input_and_few_channels():
    torch.manual_seed(0)
    model = create_model("model_c")
    image = np.zeros((28, 28))
    image[6:22, 12:16] = 1
    fm = feature_maps(model, image)
    assert [(layer.name, layer.maps.shape[0]) for layer in fm.layers] == [
        ("cnn1", 16),
        ("pool1", 16),
        ("cnn2", 32),
        ("pool2", 32),
    ]
    fig = plot_feature_maps(fm, None, max_channels=2)
    assert len(fig.axes) == 1 + 4 * 2


def test_model_without_conv_layers_is_an_error():
    with pytest.raises(CnnlabError, match="no conv or pooling layers"):
        feature_maps(create_model("mlp"), np.zeros((28, 28)))
    with pytest.raises(CnnlabError, match="shape"):
        feature_maps(create_model("tutorial_cnn"), np.zeros((2, 28, 28)))
    # another size is an image to preprocess (as predict does), not an error
    stroke = np.zeros((20, 20))
    stroke[4:16, 9:11] = 1.0  # a blank image is refused: nothing to centre
    fm = feature_maps(create_model("tutorial_cnn"), stroke)
    assert fm.layers[0].maps.shape[-2:] == (26, 26)
