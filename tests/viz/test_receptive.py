import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.models import create_model
from cnnlab.models.summary import summary
from cnnlab.viz import save_figure
from cnnlab.viz.receptive import layer_geometry, plot_receptive_field, receptive_field


def _outside(rf) -> np.ndarray:
    top, bottom, left, right = rf.box
    outside = rf.gradient.copy()
    outside[top : bottom + 1, left : right + 1] = 0
    return outside


def test_geometry_matches_summary_rows():
    model = create_model("lenet5")
    rows = {r.name: r for r in summary(model).rows}
    for g in layer_geometry(model):
        assert g.rf == rows[g.name].receptive_field and g.jump == rows[g.name].jump
    assert [g.rf[0] for g in layer_geometry(model)] == [5, 6, 14, 16]


def test_effective_rf_is_zero_outside_theoretical(trained_run, tmp_path, assert_png):
    fig = plot_receptive_field(trained_run, "test:0")
    rf = receptive_field(trained_run, "test:0")
    assert rf.layer == "conv3" and rf.unit == (1, 1)
    assert rf.geometry.rf == (18, 18) and rf.geometry.jump == (4, 4)
    assert rf.box == (4, 21, 4, 21)  # centre 8.5 + 4 = 12.5, +- 8.5
    assert rf.gradient.shape == (28, 28)
    assert np.all(_outside(rf) == 0)
    assert rf.gradient.max() > 0
    assert_png(save_figure(fig, tmp_path / "rf.png"), fig)


CASES = [
    ("conv1", (0, 0), (0, 2, 0, 2)),
    ("pool1", (12, 3), (24, 27, 6, 9)),
    ("conv2", (0, 10), (0, 7, 20, 27)),
]


@pytest.mark.parametrize(("layer", "unit", "box"), CASES)
def test_effective_rf_other_layers_and_units(layer, unit, box):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    image = np.random.default_rng(0).random((28, 28))  # dense input: every path is active
    rf = receptive_field(create_model("tutorial_cnn"), image, layer=layer, unit=unit)
    assert rf.box == box
    assert np.all(_outside(rf) == 0)
    top, bottom, left, right = box
    assert np.count_nonzero(rf.gradient[top : bottom + 1, left : right + 1]) > 0


def test_bad_layer_and_unit():
    model = create_model("tutorial_cnn")
    with pytest.raises(CnnlabError, match="layer 'fc1' not found"):
        receptive_field(model, np.zeros((28, 28)), layer="fc1")
    with pytest.raises(CnnlabError, match=r"unit=\(5, 0\) is outside"):
        receptive_field(model, np.zeros((28, 28)), unit=(5, 0))


def test_space_to_depth_stem_counts_in_the_receptive_field():
    """speednet's PixelUnshuffle(2) is a 2x2 window, stride 2: the box is exactly the gradient's."""
    import torch

    torch.manual_seed(0)
    model = create_model("speednet").eval()  # eval: batch norm must not mix positions
    image = np.random.default_rng(0).random((28, 28))
    rf = receptive_field(model, image, layer="conv2", unit=(3, 3))
    assert rf.geometry.rf == (16, 16) and rf.geometry.jump == (4, 4)
    assert rf.box == (6, 21, 6, 21)  # centre 1.5 + 3 * 4 = 13.5, +- 7.5
    rows, cols = np.nonzero(rf.gradient)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == rf.box
