import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import CnnlabError, ImageError
from cnnlab.run import as_run as load_run
from cnnlab.viz.model_input import load_input
from cnnlab.viz.saliency import saliency


def test_image_file_is_preprocessed_like_predict(trained_run, tmp_path):
    run = load_run(trained_run)
    digit = load_input("test:0", run)  # a 7, white on black, 28x28
    assert digit.label == 7 and digit.name == "mnist test #0"
    # the same digit as a user would draw it: black on white, bigger, off centre
    big = Image.fromarray(((1 - digit.display) * 255).astype(np.uint8)).resize((84, 84))
    canvas = Image.new("L", (120, 100), 255)
    canvas.paste(big, (30, 5))
    path = tmp_path / "my_seven.png"
    canvas.save(path)
    inp = load_input(str(path), run)
    assert inp.display.shape == (28, 28) and inp.label is None and inp.name == "my_seven.png"
    assert inp.display.max() == pytest.approx(1.0, abs=0.05) and inp.display[0, 0] == 0
    ys, xs = np.nonzero(inp.display > 0.3)
    assert abs(ys.mean() - 13.5) < 3 and abs(xs.mean() - 13.5) < 3  # centred as MNIST is
    torch.testing.assert_close(
        inp.tensor, run.normalizer(torch.from_numpy(inp.display[None, None].astype(np.float32)))
    )
    assert saliency(run, str(path)).target == 7


def test_photo_and_bad_specs(trained_run):
    run = load_run(trained_run)
    assert load_input("flower", run).display.shape == (28, 28)
    with pytest.raises(ImageError, match="image not found"):
        load_input("no_such.png", run)
    with pytest.raises(CnnlabError, match="out of range"):
        load_input("test:10000", run)
    with pytest.raises(CnnlabError, match="integer"):
        load_input("test:x", run)
