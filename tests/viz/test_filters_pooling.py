import numpy as np
import pytest
import scipy.signal

from cnnlab.errors import CnnlabError
from cnnlab.images import load_named_image
from cnnlab.run import as_run as load_run
from cnnlab.viz import save_figure
from cnnlab.viz.filters import (
    filter_images,
    learned_filters,
    plot_filter_grid,
    plot_learned_filters,
)
from cnnlab.viz.pooling import plot_pooling, pool_images


def test_filter_outputs_equal_scipy(tmp_path, assert_png):
    fig = plot_filter_grid("flower", ["sobel-x", "box:5", "0,1,0;1,-4,1;0,1,0"])
    r = filter_images("flower", ["sobel-x", "box:5", "0,1,0;1,-4,1;0,1,0"])
    gray = load_named_image("flower", gray=True)
    np.testing.assert_allclose(r.image, gray)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_allclose(
        r.outputs["sobel-x"], scipy.signal.convolve2d(gray, sobel, "same"), atol=1e-12
    )
    box = np.full((5, 5), 1 / 25)
    np.testing.assert_allclose(
        r.outputs["box:5"], scipy.signal.convolve2d(gray, box, "same"), atol=1e-12
    )
    assert r.scales == {"sobel-x": "clahe", "box:5": "clip", "0,1,0;1,-4,1;0,1,0": "clahe"}
    for d in r.display.values():
        assert d.shape == gray.shape and d.min() >= 0 and d.max() <= 1
    assert r.crop == (250, 370, 200, 270)  # notebook 004's flower crop
    assert_png(save_figure(fig, tmp_path / "filter.png"), fig)


def test_filter_errors():
    with pytest.raises(CnnlabError, match="unknown kernel"):
        filter_images("china", ["nope"])
    with pytest.raises(CnnlabError, match="crop"):
        filter_images("china", ["edge"], crop="0,900,0,10")


def test_pooling_matches_reshape(tmp_path, assert_png):
    fig = plot_pooling("china", size=2)
    r = pool_images("china", size=2)
    crop = load_named_image("china")[130:250, 150:220]
    np.testing.assert_allclose(r.original, crop)
    blocks = crop.reshape(60, 2, 35, 2, 3)
    np.testing.assert_allclose(r.max_pool, blocks.max((1, 3)))
    np.testing.assert_allclose(r.avg_pool, blocks.mean((1, 3)))
    np.testing.assert_allclose(r.depth_max, crop.max(-1))
    np.testing.assert_allclose(r.depth_avg, crop.mean(-1))
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == [
        "input 120x70",
        "max pool 2x2",
        "average pool 2x2",
        "depth-wise max",
        "depth-wise mean",
    ]
    assert_png(save_figure(fig, tmp_path / "pool.png"), fig)
    with pytest.raises(CnnlabError, match="pool size"):
        pool_images("china", size=0)


def test_learned_filters_are_the_weights(trained_run, tmp_path, assert_png):
    fig = plot_learned_filters(trained_run)
    lf = learned_filters(trained_run)
    weights = load_run(trained_run).model.conv1.weight.detach().numpy()
    assert lf.layer == "conv1" and lf.weights.shape == (32, 1, 3, 3)
    np.testing.assert_array_equal(lf.weights, weights)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 32
    assert_png(save_figure(fig, tmp_path / "filters.png"), fig)
    deep = learned_filters(trained_run, layer="conv2")  # data only: drawing 64 panels is slow
    assert deep.weights.shape == (64, 32, 3, 3)
    with pytest.raises(CnnlabError, match="conv layer 'pool1' not found"):
        plot_learned_filters(trained_run, layer="pool1")
