"""`cnnlab conv1d / conv2d / outsize / filter / pool`: printed output, files, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def test_conv1d_notebook_000(run_cli):
    code, out, _ = run_cli("conv1d", "1,3,2,4,5,6,1,3", "--kernel", "1,0,3,1,2", "--padding", "2")
    assert code == 0 and out == "[5 14 16 26 24 34 19 22]\n"


def test_conv1d_modes_and_negative_literals(run_cli):
    assert run_cli("conv1d", "1,2,3", "-k", "0,1,0.5", "--mode", "full")[1] == ("[0 1 2.5 4 1.5]\n")
    assert run_cli("conv1d", "-1,2,3", "-k", "1,-1")[1] == "[3 1]\n"
    assert run_cli("conv1d", "1,2,3,4", "-k", "1,-1", "--correlate")[1] == "[-1 -1 -1]\n"
    assert run_cli("conv1d", "1,2,3,4,5", "-k", "1", "--stride", "2")[1] == "[1 3 5]\n"


def test_conv2d_notebook_000(run_cli):
    x, w = "1,3,2,4;5,6,1,3;1,2,0,2;3,4,3,2", "1,0,3;1,2,1;0,1,1"
    assert run_cli("conv2d", x, "--kernel", w)[1] == "[[25 24]\n [28 25]]\n"
    code, out, _ = run_cli("conv2d", x, "--kernel", w, "--mode", "same")
    assert out == "[[11 25 32 13]\n [19 25 24 13]\n [13 28 25 17]\n [11 17 14  9]]\n"
    assert run_cli("conv2d", x, "-k", w, "-p", "1", "-s", "2")[1] == "[[11 32]\n [13 25]]\n"


def test_conv2d_notebook_003_edge(run_cli):
    img = ";".join(["200,200,200,200,200"] * 3 + ["0,0,0,0,0"] * 3)
    code, out, _ = run_cli("conv2d", img, "--kernel", "edge10", "--correlate")
    assert out == "[[   0    0    0]\n [6000 6000 6000]\n [6000 6000 6000]\n [   0    0    0]]\n"


def test_outsize(run_cli):
    code, out, _ = run_cli("outsize", "10", "5", "--padding", "2", "--stride", "1")
    assert code == 0
    assert out == "o = floor((n + 2p - m) / s) + 1 = floor((10 + 2*2 - 5) / 1) + 1 = 10\n"
    assert run_cli("outsize", "28", "3")[1].endswith("= 26\n")
    assert run_cli("outsize", "7", "3", "-p", "same", "-s", "2")[1].endswith("= 4\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conv2d", "1,2;3,4", "--kernel", "blurry"], "unknown kernel 'blurry'"),
        (["conv1d", "1,a,3", "--kernel", "1"], "input '1,a,3': 'a' is not a number"),
        (["conv1d", "1,2,3", "--kernel", "1,nan"], "'nan' is not a finite number"),
        (["conv1d", "1,2,3", "--kernel", "1", "--stride", "0"], "stride=0 must be >= 1"),
        (["conv1d", "1,2", "-k", "1,2,3", "-s", "2"], "kernel of size 3 is larger than the padded"),
        (["conv2d", "1,2;3", "--kernel", "1"], "rows of different lengths"),
        (["conv2d", "1,2;3,4", "-k", "1", "--padding", "x"], "--padding 'x' is not an integer"),
        (["conv1d", "1,2", "-k", "1", "--mode", "same", "-p", "1"], "not both"),
        (["outsize", "3", "5"], "kernel of size 5 is larger than the padded input of length 3"),
        (["outsize", "10", "3", "--stride", "0"], "stride=0"),
        (["filter", "china", "--kernel", "nope", "--out", "x.png"], "unknown kernel 'nope'"),
        (["filter", "missing.png", "--out", "x.png"], "image not found: missing.png"),
        (["filter", "china"], "filter needs IMAGE and --out"),
        (["pool", "missing.png", "--out", "x.png"], "image not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(run_cli, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*argv)
    assert code == 2
    assert err.startswith("cnnlab: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def _png(tmp_path, array):
    path = tmp_path / "in.png"
    Image.fromarray(array).save(path)
    return path


def test_filter_on_a_file_gray_and_rgb(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    src = _png(tmp_path, rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    out = tmp_path / "out.png"
    code, text, _ = run_cli("filter", str(src), "--kernel", "box", "--out", str(out))
    assert code == 0 and "30x40x3" in text
    img = np.asarray(Image.open(out))
    assert img.shape == (30, 40, 3)
    code, text, _ = run_cli(
        "filter",
        str(src),
        "-k",
        "sobel-x",
        "--gray",
        "--boundary",
        "valid",
        "--equalize",
        "--out",
        str(out),
    )
    assert code == 0 and np.asarray(Image.open(out)).shape == (28, 38)
    code, _, _ = run_cli(
        "filter",
        str(src),
        "-k",
        "0,-1,0;-1,5,-1;0,-1,0",
        "--boundary",
        "replicate",
        "--scale",
        "abs",
        "--out",
        str(out),
    )
    assert code == 0


def test_filter_unreadable_image(run_cli, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    code, _, err = run_cli("filter", str(bad), "--out", str(tmp_path / "o.png"))
    assert code == 2 and "not a readable image" in err
    assert not (tmp_path / "o.png").exists()


def test_filter_named_sample_image(run_cli, tmp_path):
    out = tmp_path / "china.png"
    code, text, _ = run_cli(
        "filter",
        "china",
        "--kernel",
        "vline:7",
        "--gray",
        "--scale",
        "minmax",
        "--out",
        str(out),
    )
    assert code == 0 and np.asarray(Image.open(out)).shape == (427, 640)


def test_filter_list(run_cli):
    code, out, _ = run_cli("filter", "--list")
    assert code == 0
    assert out.splitlines()[1].startswith("sharpen    3x3")
    assert "gaussian   5x5" in out and "vline      7x7" in out


def test_pool_kinds(run_cli, tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    src = _png(tmp_path, arr)
    out = tmp_path / "p.png"
    assert run_cli("pool", str(src), "--kind", "max", "--size", "2", "--out", str(out))[0] == 0
    got = np.asarray(Image.open(out))
    assert got.shape == (5, 6, 3)
    assert (got == arr.reshape(5, 2, 6, 2, 3).max(axis=(1, 3))).all()
    assert (
        run_cli(
            "pool",
            str(src),
            "--kind",
            "avg",
            "--size",
            "3",
            "--stride",
            "1",
            "--out",
            str(out),
        )[0]
        == 0
    )
    assert np.asarray(Image.open(out)).shape == (8, 10, 3)
    assert run_cli("pool", str(src), "--kind", "depth", "--size", "3", "--out", str(out))[0] == 0
    got = np.asarray(Image.open(out))
    assert got.shape == (10, 12) and (got == arr.max(axis=-1)).all()
    code, _, err = run_cli("pool", str(src), "--kind", "depth", "--gray", "--out", str(out))
    assert code == 2 and "needs a colour image" in err


def test_console_script_prints_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlab", "conv1d", "1,2", "--kernel", "1", "--stride", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("cnnlab: error: stride=0") and "Traceback" not in proc.stderr


EDGE = "-1,-1,-1;-1,8,-1;-1,-1,-1"  # notebook 000's edge kernel, starts with a minus sign


def test_filter_takes_a_kernel_literal_that_starts_with_minus(run_cli, tmp_path):
    out = tmp_path / "edge.png"
    code, text, err = run_cli("filter", "china", "--kernel", EDGE, "--gray", "--out", str(out))
    assert code == 0, err
    assert "(3x3)" in text and np.asarray(Image.open(out)).shape == (427, 640)
    code, _, err = run_cli("filter", "china", "-k", EDGE, "--out", str(out))
    assert code == 0, err


@pytest.mark.parametrize(
    "argv",
    [
        ["conv2d", "-1,2;3,-4", "--kernel", EDGE, "--mode", "same"],
        ["conv2d", "-1,2;3,-4", "-k", "-1,0;0,1"],
        ["conv1d", "-1.5,2,-3e-1", "--kernel", "-1,-2"],
        ["conv1d", "-1", "-k", "-2"],
    ],
)
def test_negative_signals_and_kernels(run_cli, argv):
    code, out, err = run_cli(*argv)
    assert code == 0, err
    assert out.startswith("[")


def test_viz_conv_takes_negative_literals(run_cli, tmp_path):
    out = tmp_path / "conv.png"
    code, _, err = run_cli(
        "viz",
        "conv",
        "--input",
        "-1,2,3;4,-5,6;7,8,-9",
        "--kernel",
        "-1,0;0,1",
        "--padding",
        "valid",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert out.is_file()


def test_filter_boundaries_are_the_library_ones():
    from cnnlab.cli.ops_cmds import BOUNDARIES
    from cnnlab.ops import filters

    assert BOUNDARIES == filters.BOUNDARIES


@pytest.mark.parametrize("boundary", ["reflect", "symmetric", "circular", "constant"])
def test_filter_padding_boundaries(run_cli, tmp_path, boundary):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (12, 9), dtype=np.uint8)
    src, out = _png(tmp_path, arr), tmp_path / "f.png"
    extra = ["--fillvalue", "0.25"] if boundary == "constant" else []
    code, text, err = run_cli(
        "filter",
        str(src),
        "-k",
        EDGE,
        "--boundary",
        boundary,
        "--scale",
        "abs",
        "--out",
        str(out),
        *extra,
    )
    assert code == 0, err
    assert f"boundary {boundary}" in text and np.asarray(Image.open(out)).shape == (12, 9)


def test_filter_fillvalue_without_constant_is_one_line(run_cli, tmp_path):
    src = _png(tmp_path, np.zeros((5, 5), dtype=np.uint8))
    code, _, err = run_cli("filter", str(src), "--fillvalue", "2", "--out", str(tmp_path / "o.png"))
    assert code == 2 and err == "cnnlab: error: fillvalue=2 is only used with boundary='constant'\n"


def test_conv_integer_literals_are_exact(run_cli):
    # read as float64, 2**27 + 1 squared would print ...917440
    assert run_cli("conv1d", "134217729", "-k", "134217729")[1] == "[18014398777917441]\n"
    code, out, _ = run_cli("conv2d", "134217729,1;0,0", "-k", "134217729", "--mode", "same")
    assert (
        out == "[[18014398777917441         134217729]\n [                0                 0]]\n"
    )
    code, _, err = run_cli("conv1d", "4611686018427387904", "-k", "4")
    assert code == 2 and "does not fit in int64" in err


def test_conv_padding_mode_dilation_and_fill(run_cli):
    x = "1,2,3,4,5"
    expected = np.convolve(np.pad([1, 2, 3, 4, 5], 2, mode="wrap"), [1, 0, -1], "valid")
    out = run_cli("conv1d", x, "-k", "1,0,-1", "-p", "2", "--padding-mode", "circular")[1]
    assert out == "[" + " ".join(str(v) for v in expected) + "]\n"
    out = run_cli("conv1d", x, "-k", "1,-1", "-d", "2", "--mode", "full")[1]
    assert out == "[" + " ".join(str(v) for v in np.convolve([1, 2, 3, 4, 5], [1, 0, -1])) + "]\n"
    args = ("--mode", "same", "--padding-mode", "constant", "--fillvalue", "0.5")
    assert run_cli("conv1d", "1,2,3", "-k", "1,1,1", *args)[1] == "[3.5 6 5.5]\n"
    code, _, err = run_cli("conv1d", "1,2,3", "-k", "1,1", "-p", "3", "--padding-mode", "reflect")
    assert code == 2 and "for padding_mode='reflect'" in err


def test_pool_padding_and_ceil_mode_equal_torch(run_cli, tmp_path):
    torch = pytest.importorskip("torch")
    arr = np.random.default_rng(4).integers(0, 256, (11, 7), dtype=np.uint8)
    src, out = _png(tmp_path, arr), tmp_path / "p.png"
    argv = ("pool", str(src), "--size", "3", "--stride", "2", "-p", "1", "--ceil-mode")
    assert run_cli(*argv, "--out", str(out))[0] == 0
    expected = torch.nn.functional.max_pool2d(
        torch.from_numpy(arr.astype(float))[None], 3, 2, 1, ceil_mode=True
    )[0].numpy()
    assert np.array_equal(np.asarray(Image.open(out)), expected.astype(np.uint8))
    code, _, err = run_cli("pool", str(src), "--kind", "depth", "--ceil-mode", "--out", str(out))
    assert code == 2 and "apply to max and avg pooling only" in err
