"""`cnnlab serve` / `cnnlab export` argument checking (no server started)."""

from __future__ import annotations

import pytest

from cnnlab.cli import main


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--max-upload-mb", "0"], "--max-upload-mb 0.0 must be in (0, 1024]"),
        (["--max-pixels", "0"], "--max-pixels 0 must be positive"),
        (["--max-concurrent", "0"], "--max-concurrent 0"),
        (["--port", "70000"], "--port 70000 is not a TCP port"),
        (["--keep-alive", "0"], "--keep-alive 0.0 must be in (0, 3600] seconds"),
        (["--inference-timeout", "nan"], "--inference-timeout nan must be in (0, 3600] seconds"),
    ],
)
def test_serve_rejects_bad_limits(flags, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(tmp_path), *flags])
    assert exc.value.code == 2
    assert words in capsys.readouterr().err


def test_serve_missing_run_is_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(tmp_path / "no-such-run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: ") and "no-such-run" in err and err.count("\n") == 1


def test_serve_passes_keep_alive_to_uvicorn(trained_run, monkeypatch, capsys):
    """Idle connections outlive the 5 s pools of common clients (the CI's ReadError race)."""
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    assert main(["serve", str(trained_run), "--port", "0"]) == 0
    assert seen["timeout_keep_alive"] == 30.0 and seen["host"] == "127.0.0.1"
    assert main(["serve", str(trained_run), "--port", "0", "--keep-alive", "7.5"]) == 0
    assert seen["timeout_keep_alive"] == 7.5
    assert "serving" in capsys.readouterr().out


def test_export_help_names_the_formats(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "onnx" in out and "torchscript" in out and "safetensors" in out
