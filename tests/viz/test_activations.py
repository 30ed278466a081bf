import numpy as np

from cnnlab.viz import save_figure
from cnnlab.viz.activations import NOTEBOOK_LOGITS, activation_curves, plot_activations


def test_curves_values():
    c = activation_curves()
    x = c.x
    np.testing.assert_allclose(c.curves["ReLU"], np.where(x > 0, x, 0))
    np.testing.assert_allclose(c.curves["sigmoid"], 0.5 * (1 + np.tanh(x / 2)))
    np.testing.assert_allclose(c.curves["tanh"], np.tanh(x))
    z = np.array(NOTEBOOK_LOGITS)
    np.testing.assert_allclose(c.softmax, np.exp(z) / np.exp(z).sum())  # notebook 000's formula
    assert np.argmax(c.softmax) == 3


def test_plot_has_four_panels_and_png(tmp_path, assert_png):
    fig = plot_activations()
    c = activation_curves()
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == [
        "ReLU",
        "sigmoid",
        "tanh",
        "softmax",
    ]
    line = fig.axes[0].get_lines()[-1]
    np.testing.assert_allclose(line.get_ydata(), c.curves["ReLU"])
    assert_png(save_figure(fig, tmp_path / "act.png"), fig)
