import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.run import as_run as load_run
from cnnlab.viz import save_figure
from cnnlab.viz.invariance import plot_invariance, shift_image, shift_probabilities
from cnnlab.viz.model_input import load_input


@pytest.mark.parametrize(("dy", "dx"), [(0, 0), (2, -3), (-5, 1), (30, 0)])
def test_shift_image_zero_fill(dy, dx):
    a = np.arange(1.0, 1 + 6 * 7).reshape(6, 7)
    got = shift_image(a, dy, dx)
    padded = np.pad(a, 40)
    want = padded[40 - dy : 40 - dy + 6, 40 - dx : 40 - dx + 7]
    np.testing.assert_array_equal(got, want)


def test_heat_map_against_model_and_vs(trained_run, mlp_run, tmp_path, assert_png):
    fig = plot_invariance(trained_run, "test:0", max_shift=3, vs=mlp_run)
    inv = shift_probabilities(trained_run, "test:0", max_shift=3, vs=mlp_run)
    assert [m.run.name for m in inv.maps] == ["tutorial_cnn", "mlp"]
    for m in inv.maps:
        assert m.probs.shape == (7, 7) and m.target == 7
        assert np.all((m.probs >= 0) & (m.probs <= 1))
    run = load_run(trained_run)
    x = load_input("test:0", run).tensor
    with torch.no_grad():
        p0 = run.model(x).softmax(-1)[0, 7].item()
    assert inv.maps[0].probs[3, 3] == pytest.approx(p0, abs=1e-5)
    shifted = shift_image(inv.image.display, 2, -1)[None, None]
    with torch.no_grad():
        p = run.model(run.normalizer(torch.from_numpy(shifted).float())).softmax(-1)[0, 7]
    assert inv.maps[0].probs[3 + 2, 3 - 1] == pytest.approx(p.item(), abs=1e-5)
    assert_png(save_figure(fig, tmp_path / "inv.png"), fig)


def test_bad_shift(trained_run):
    with pytest.raises(CnnlabError, match="max_shift"):
        shift_probabilities(trained_run, "test:0", max_shift=-1)
