import numpy as np
import pytest
import scipy.signal

from cnnlab.errors import CnnlabError
from cnnlab.ops.conv import conv2d, correlate2d
from cnnlab.viz import save_figure
from cnnlab.viz.conv import (
    MODES,
    NOTEBOOK_W,
    NOTEBOOK_X,
    conv_steps,
    plot_conv_modes,
    plot_conv_steps,
)


def _cell_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_notebook_example_numbers_equal_ops_conv2d(tmp_path, assert_png):
    fig = plot_conv_modes()
    steps = [conv_steps(padding=m) for m in MODES]
    assert [s.label for s in steps] == ["full (p=2)", "same (p=1)", "valid (p=0)"]
    for s, mode in zip(steps, ("full", "same", "valid"), strict=True):
        np.testing.assert_array_equal(s.output, conv2d(NOTEBOOK_X, NOTEBOOK_W, mode))
        np.testing.assert_array_equal(
            s.output, scipy.signal.convolve2d(NOTEBOOK_X, NOTEBOOK_W, mode)
        )
    assert steps[2].output.tolist() == [[25, 24], [28, 25]]  # notebook 000, example 2
    # the output grid drawn under the valid mode carries exactly these numbers
    out_ax = fig.axes[5]
    assert _cell_texts(out_ax)[:4] == ["25", "24", "28", "25"]
    np.testing.assert_array_equal(steps[0].kernel, np.array(NOTEBOOK_W)[::-1, ::-1])
    fig_path = save_figure(fig, tmp_path / "conv.png")
    assert_png(fig_path, fig)


@pytest.mark.parametrize("padding", ["full", "same", "valid", 1, (0, 2)])
@pytest.mark.parametrize("stride", [1, 2, (2, 1)])
@pytest.mark.parametrize("flip", [True, False])
def test_steps_match_ops_for_random_inputs(padding, stride, flip):
    rng = np.random.default_rng(0)
    x = rng.integers(-5, 6, (5, 6))
    w = rng.integers(-3, 4, (2, 3))  # even side: checks where the odd extra zero goes
    steps = conv_steps(x, w, padding=padding, stride=stride, flip=flip)
    ref = (conv2d if flip else correlate2d)(x, w, padding, stride)
    np.testing.assert_array_equal(steps.output, ref)
    assert len(steps.positions) == ref.size
    top, _, left, _ = steps.pads
    np.testing.assert_array_equal(steps.padded[top : top + 5, left : left + 6], x)


def test_step_panels_one_per_output_cell(tmp_path, assert_png):
    fig = plot_conv_steps(
        [[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.arange(9).reshape(3, 3), padding=1, stride=2
    )
    steps = conv_steps(
        [[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.arange(9).reshape(3, 3), padding=1, stride=2
    )
    assert steps.output.shape == (2, 2)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["X", "W", "rot180(W), slid"]
    assert titles[3:7] == [f"Y[{i},{j}] = {steps.output[i, j]:.0f}" for i in (0, 1) for j in (0, 1)]
    assert_png(save_figure(fig, tmp_path / "steps.png"), fig)


def test_bad_inputs_raise_one_line_errors(tmp_path):
    with pytest.raises(CnnlabError, match="stride"):
        conv_steps(stride=0)
    with pytest.raises(CnnlabError, match="padding"):
        conv_steps(padding="bogus")
    with pytest.raises(CnnlabError, match="larger than the padded input"):
        conv_steps([[1, 2]], [[1, 2, 3]])
    with pytest.raises(CnnlabError, match="steps"):
        plot_conv_steps(np.ones((20, 20)), np.ones((3, 3)), padding="same")
    fig = plot_conv_modes()
    with pytest.raises(CnnlabError, match=r"\.png"):
        save_figure(fig, tmp_path / "conv.jpg")
