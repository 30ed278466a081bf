import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.run import as_run as load_run
from cnnlab.viz import save_figure
from cnnlab.viz.model_input import load_input
from cnnlab.viz.saliency import plot_saliency, saliency


def test_grad_cam_non_trivial_on_trained_model(trained_run, tmp_path, assert_png):
    fig = plot_saliency(trained_run, "test:0")
    s = saliency(trained_run, "test:0")
    assert s.target == int(np.argmax(s.probs)) == 7  # MNIST test #0 is a 7
    assert s.gradient.shape == (1, 28, 28) and s.magnitude.shape == (28, 28)
    assert s.cam_small.shape == (3, 3)
    assert s.cam.shape == (28, 28) and s.cam.max() == pytest.approx(1.0)
    assert s.cam.std() > 0.05  # not flat
    ink = s.image.display > 0.5
    assert s.magnitude[ink].mean() > s.magnitude[~ink].mean()  # saliency sits on the digit
    assert "Grad-CAM (3x3 map)" in fig.axes[-2].get_title() or any(
        "Grad-CAM" in ax.get_title() for ax in fig.axes
    )
    assert_png(save_figure(fig, tmp_path / "saliency.png"), fig)


def test_gradient_equals_finite_difference(trained_run):
    torch = pytest.importorskip("torch")
    run = load_run(trained_run)
    s = saliency(run, "test:1", target="2")
    assert s.target == 2
    x = load_input("test:1", run).tensor.double()
    model = run.model.double()
    try:
        i, j = np.unravel_index(np.argmax(s.magnitude), s.magnitude.shape)
        eps = 1e-4
        up, down = x.clone(), x.clone()
        up[0, 0, i, j] += eps
        down[0, 0, i, j] -= eps
        with torch.no_grad():
            fd = (model(up)[0, 2] - model(down)[0, 2]).item() / (2 * eps)
    finally:
        model.float()
    # the tensor is normalised: d/d(normalised x) == gradient w.r.t. the model input
    assert fd == pytest.approx(s.gradient[0, i, j], rel=1e-3, abs=1e-6)


def test_mlp_has_no_grad_cam_and_bad_target(mlp_run):
    s = saliency(mlp_run, "test:0")
    assert s.cam is None and s.gradient.shape == (1, 28, 28)
    with pytest.raises(CnnlabError, match="target"):
        saliency(mlp_run, "test:0", target="eleven")
