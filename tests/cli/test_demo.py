"""`cnnlab demo`, the README's first command, walked as a newcomer would (small and quick)."""

from __future__ import annotations

import re

import numpy as np

from cnnlab.images import save_image


def test_demo_on_digits_trains_evaluates_predicts_and_reports(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "my_digit.png"
    canvas = np.ones((60, 60))
    canvas[10:50, 27:33] = 0.0  # a dark vertical stroke on white paper: a "1"
    save_image(mine, canvas)
    code, out, err = run_cli(
        "demo", "--dataset", "digits", "--max-steps", "40", "--quiet", "--image", str(mine)
    )
    assert code == 0, err
    for step in ("1/4 training speednet on digits", "2/4 evaluating", "3/4 predicting", "4/4"):
        assert step in out
    accuracy = float(re.search(r"test accuracy ([\d.]+)%", out).group(1))
    assert 30.0 < accuracy <= 100.0
    assert re.search(r"my_digit\.png\s+-> \d \(\d+\.\d%\)", out)
    assert len(re.findall(r"test\d_true_\d\.png\s+->", out)) == 6
    run = tmp_path / "runs" / "demo-digits" / "version_0"
    for name in ("report.html", "curves.png", "evaluation/confusion.png", "checkpoints/best.pt"):
        assert (run / name).is_file(), name
        assert str((run / name).relative_to(tmp_path)) in out
    assert (run / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_demo_without_mnist_says_so_in_one_line_and_uses_digits(run_cli, tmp_path, monkeypatch):
    import cnnlab.data
    from cnnlab.errors import DataError

    def nowhere(*args, **kwargs):
        raise DataError("mnist not found in /nowhere and the download failed: no network")

    monkeypatch.setattr(cnnlab.data, "locate_dataset", nowhere)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("demo", "--max-steps", "5", "--quiet")
    assert code == 0, err
    notice = [line for line in out.splitlines() if "MNIST" in line]
    assert len(notice) == 1 and "using digits" in notice[0] and "no network" in notice[0]
    assert "1/4 training speednet on digits" in out


def test_demo_refuses_other_datasets(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("demo", "--dataset", "fashion-mnist")
    assert code == 2
    assert err.strip().count("\n") == 0 and "mnist or digits" in err
