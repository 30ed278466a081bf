import re

import pytest
from PIL import Image


def _png_size(path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_viz_conv_default_is_notebook_example(tmp_path, run_cli):
    out = tmp_path / "conv.png"
    code, stdout, _ = run_cli("viz", "conv", "--out", str(out))
    assert code == 0 and stdout.strip() == f"wrote {out}"
    assert _png_size(out)[0] > 500


def test_viz_conv_steps_with_named_kernel(tmp_path, run_cli):
    out = tmp_path / "steps.png"
    argv = [
        "viz",
        "conv",
        "--input",
        "1,2,3;4,5,6;7,8,9",
        "--kernel",
        "sobel-x",
        "--padding",
        "1",
        "--stride",
        "2",
        "--out",
        str(out),
    ]
    assert run_cli(*argv)[0] == 0
    assert _png_size(out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["viz", "conv", "--stride", "0"], "stride"),
        (["viz", "conv", "--padding", "huge"], "padding"),
        (["viz", "filter", "china", "--kernels", "nope"], "unknown kernel 'nope'"),
        (["viz", "pool", "china", "--crop", "1,2,3"], "crop needs 4 integers"),
        (["viz", "saliency", "no/such/run", "test:0"], "no/such/run"),
        (["viz", "activations", "--out", "act.jpg"], r"\.png"),
        (["viz"], "required"),
    ],
)
def test_bad_input_exit_2_one_line(argv, message, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_cli(*argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cnnlab: error: "), err
    assert re.search(message, err), err
    assert not list(tmp_path.glob("*.png"))


def test_viz_run_pictures(trained_run, mlp_run, tmp_path, run_cli):
    inv = tmp_path / "inv.png"
    argv = [
        "viz",
        "invariance",
        str(trained_run),
        "test:0",
        "--max-shift",
        "2",
        "--vs",
        str(mlp_run),
        "--out",
        str(inv),
    ]
    assert run_cli(*argv)[0] == 0 and _png_size(inv)
    curves = tmp_path / "curves.png"
    assert run_cli("viz", "curves", str(trained_run), "--out", str(curves))[0] == 0
    assert _png_size(curves)
    code, _, err = run_cli("viz", "receptive-field", str(trained_run), "test:0", "--unit", "9,9")
    assert code == 2 and "unit=(9, 9) is outside" in err


def test_report_is_self_contained(trained_run, tmp_path, run_cli):
    out = tmp_path / "report.html"
    code, stdout, _ = run_cli(
        "report", str(trained_run), "--image", "test:3", "--limit-test", "500", "--out", str(out)
    )
    assert code == 0 and stdout.strip() == f"wrote {out}"
    text = out.read_text()
    for title in [
        "Config",
        "Model summary",
        "Learning curves",
        "Confusion matrix",
        "Highest-loss test images",
        "First-layer kernels",
        "Feature maps of test:3",
        "Receptive field on test:3",
        "Saliency and Grad-CAM of test:3",
    ]:
        assert f"<h2>{title}" in text
    assert text.count("data:image/png;base64,") == 7
    assert "not available" not in text
    assert "on 500 images" in text
    assert 'src="http' not in text and "<script" not in text  # nothing fetched from outside
    assert "<td>conv3</td><td>Conv2d</td><td>64x3x3</td><td>36,928</td><td>18x18</td>" in text
