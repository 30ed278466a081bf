import numpy as np
import pytest

from cnnlab.data import load_dataset
from cnnlab.errors import CnnlabError
from cnnlab.viz import save_figure
from cnnlab.viz.samples import plot_samples, sample_images


def test_samples_are_the_dataset_images(shared_data, tmp_path, assert_png):
    fig = plot_samples("mnist", count=12, split="test", data_dir=shared_data, seed=3)
    g = sample_images("mnist", count=12, split="test", data_dir=shared_data, seed=3)
    ds = load_dataset("mnist", "test", data_dir=shared_data)
    assert g.images.shape == (12, 1, 28, 28) and len(set(g.indices.tolist())) == 12
    np.testing.assert_array_equal(g.images, ds.images[g.indices].numpy())
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [ds.classes[int(ds.labels[i])] for i in g.indices]
    assert_png(save_figure(fig, tmp_path / "samples.png"), fig)
    again = sample_images("mnist", count=12, split="test", data_dir=shared_data, seed=3)
    np.testing.assert_array_equal(again.indices, g.indices)  # same seed, same images


def test_bad_count():
    with pytest.raises(CnnlabError, match="count"):
        sample_images("digits", count=0)
