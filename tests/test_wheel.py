"""The installed package works without the source tree: build the wheel, install it into a fresh
venv with no extras (torch==2.13.0 first, never plain torch), and walk a newcomer's commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.images import save_image

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _sh(*argv: str | Path, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw
    )


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    built = _sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                "-w", tmp / "dist", ROOT)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("cnnlab-*.whl")
    env = tmp / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    assert _sh(base_python, "-m", "venv", env).returncode == 0
    pip = [env / "bin" / "python", "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt"]
    for what in (["torch==2.13.0"], [wheel]):
        done = _sh(*pip, *what)
        assert done.returncode == 0, done.stderr[-2000:]
    return env


def _cnnlab(venv: Path, cwd: Path, *argv: str | Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return _sh(venv / "bin" / "cnnlab", *argv, cwd=cwd, env=env, timeout=300)


def test_the_wheel_carries_the_web_page_and_no_tests(venv):
    code = "import cnnlab, pathlib; print(pathlib.Path(cnnlab.__file__).parent)"
    pkg = Path(_sh(venv / "bin" / "python", "-c", code, cwd="/").stdout.strip())
    assert ROOT not in pkg.parents  # the installed copy, not the source tree
    for name in ("index.html", "app.js", "app.css", "swagger/swagger-ui-bundle.js"):
        assert (pkg / "serve" / "static" / name).is_file(), name


def test_installed_cli_trains_and_predicts_without_extras(venv, tmp_path):
    assert _cnnlab(venv, tmp_path, "--help").returncode == 0
    summary = _cnnlab(venv, tmp_path, "summary", "tutorial_cnn")
    assert summary.returncode == 0 and "93,322" in summary.stdout
    train = _cnnlab(venv, tmp_path, "train", "--model", "mlp", "--dataset", "digits",
                    "--max-steps", "20", "--threads", "1", "--quiet", "--json")  # fmt: skip
    assert train.returncode == 0, train.stderr
    run = json.loads(train.stdout.strip().splitlines()[-1])["run_dir"]
    image = tmp_path / "one.png"
    canvas = np.ones((40, 40))
    canvas[5:35, 18:22] = 0.0
    save_image(image, canvas)
    pred = _cnnlab(venv, tmp_path, "predict", run, image, "--json")
    assert pred.returncode == 0, pred.stderr
    assert json.loads(pred.stdout)[0]["class_name"] in list("0123456789")

    for argv, extra in ((["serve", run], "serve"), (["export", run, "--format", "onnx"], "export")):
        done = _cnnlab(venv, tmp_path, *argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert f"pip install 'cnnlab[{extra}]'" in done.stderr
