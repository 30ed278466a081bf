"""Package-level promises: no torch in ops, the method chooser, the benchmark script runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from _bench import bench_script
from cnnlab.ops import choose_method


def test_ops_never_imports_torch():
    code = (
        "import sys, cnnlab.ops, cnnlab.cli.ops_cmds; "
        "cnnlab.ops.conv2d([[1.0]], [[1.0]]); "
        "sys.exit('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()


def test_choose_method_crossover():
    assert choose_method((1024, 1024), np.ones((3, 3)), (1024, 1024)) == "direct"
    assert choose_method((1024, 1024), np.ones((15, 15)), (1024, 1024)) == "fft"
    assert choose_method((64, 64), np.ones((15, 15)), (64, 64)) == "fft"
    # zero taps cost nothing in the direct method (sparse line kernels, dilation)
    line = np.zeros((15, 15))
    line[:, 7] = 1
    assert choose_method((1024, 1024), line, (1024, 1024)) == "direct"


def test_bench_script_runs_and_writes_json(tmp_path, capsys, monkeypatch):
    bench = bench_script("conv")
    out = tmp_path / "conv.json"
    assert (
        bench.main(["--sizes", "8,16", "--kernels", "3", "--repeats", "1", "--out", str(out)]) == 0
    )
    rows = json.loads(out.read_text())["rows"]
    assert [(r["n"], r["m"]) for r in rows] == [(8, 3), (16, 3)]
    assert all(r["max_rel_error_vs_convolve2d"] < 1e-12 for r in rows)
    assert "| 16x16 | 3x3 |" in capsys.readouterr().out


def test_bench_script_integer_mode_is_exact(tmp_path, capsys, monkeypatch):
    bench = bench_script("conv")
    out = tmp_path / "conv_int.json"
    argv = ["--dtype", "int64", "--sizes", "8", "--kernels", "3", "--repeats", "1"]
    assert bench.main([*argv, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["n"], r["m"], r["exact_vs_scipy_int"]) for r in rows] == [(8, 3, True)]
    assert "| 8x8 | 3x3 |" in capsys.readouterr().out


def test_bench_train_probe_points(monkeypatch):
    """bench/train.py probes the test set at evenly spaced batches, or only after the last."""
    bench = bench_script("train")
    assert bench.probe_points(446, 4) == {112, 223, 334, 446}
    assert bench.probe_points(446, 1) == {446}
    assert bench.probe_points(3, 4) == {1, 2, 3}
    assert bench.probe_points(446, 0) == set()
