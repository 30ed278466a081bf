"""The bad-input corpus (``_corpus.py``): every case through the real CLI entry point.

Each case generates its input in tmp_path and runs ``cnnlab.cli.main`` in-process: a bad input
must exit 2 with exactly one stderr line ``cnnlab: error: <message>`` matching the case's
pattern (an uncaught exception fails the test with its traceback), a valid one must exit 0.
After a failure ``out/`` must hold nothing new: no partial PNG, CSV, run folder or temp file.
Image cases are also posted to the server, which must answer the case's 4xx (or 200).
"""

from __future__ import annotations

import base64
import contextlib
import re
import resource
import subprocess
import sys
from pathlib import Path

import _corpus as corpus
import pytest

from cnnlab.cli import main

CASES = {case.name: case for case in corpus.CASES}


@contextlib.contextmanager
def file_size_limit(limit: int | None):
    """RLIMIT_FSIZE for this process while the block runs (a full disk for every write)."""
    if limit is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def run_cli(argv: list[str], capsys, fsize: int | None = None) -> tuple[int, str, str]:
    with file_size_limit(fsize):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


# Inputs that could exhaust memory or block without the checks run in a child process with an
# address-space limit (the whole CLI, torch included, fits in 2 GiB) and a timeout.
ADDRESS_SPACE = 2 << 30
TIMEOUT = 120


def run_isolated(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    try:
        done = subprocess.run(
            [sys.executable, "-m", "cnnlab", *argv], cwd=cwd, capture_output=True, text=True,
            timeout=TIMEOUT, preexec_fn=limit, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv}: still running after {TIMEOUT} s")
    return done.returncode, done.stdout, done.stderr


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_the_corpus_is_big_enough():
    bad = [c for c in corpus.CASES if c.error is not None]
    assert len(bad) >= 30, len(bad)
    assert len(CASES) == len(corpus.CASES), "case names must be unique"


@pytest.mark.parametrize("name", list(CASES))
def test_cli(name, digits_run, tmp_path, monkeypatch, capsys):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    argv = case.build(tmp_path, digits_run)
    before = files_under(tmp_path / "out")
    if case.isolate:
        rc, out, err = run_isolated(argv, tmp_path)
    else:
        rc, out, err = run_cli(argv, capsys, case.fsize)
    if case.error is None:
        assert rc == 0, f"{name}: a valid input failed: {err}"
        return
    assert rc == 2, f"{name}: exit {rc}, stderr {err!r}"
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    message = err.removeprefix("cnnlab: error: ").rstrip("\n")
    assert err.startswith("cnnlab: error: ")
    assert re.fullmatch(case.error, message), f"{name}: {message!r} !~ {case.error!r}"
    left = [p for p in files_under(tmp_path / "out") if p not in before]
    assert all(re.fullmatch(case.leaves, p) for p in left), f"{name}: left behind {left}"
    assert not list(tmp_path.rglob(".*tmp*")), f"{name}: temp file left behind"


@pytest.fixture(scope="module")
def client(digits_run):
    from fastapi.testclient import TestClient

    from cnnlab.run import load
    from cnnlab.serve.app import create_app

    with TestClient(create_app(load(digits_run))) as c:
        yield c


IMAGE_CASES = [c for c in corpus.CASES if c.image is not None and c.server is not None]


@pytest.mark.parametrize("name", [c.name for c in IMAGE_CASES])
def test_server(name, client):
    """The same bytes uploaded to POST /predict: the case's status, a one-line detail for 4xx."""
    case = CASES[name]
    data = case.image()
    response = client.post("/predict", files={"file": ("../../etc/passwd", data, "image/png")})
    assert response.status_code == case.server, response.text
    if data:  # the same bytes as base64 JSON (empty bytes are an empty string there: a 400 too)
        as_json = client.post("/predict", json={"image": base64.b64encode(data).decode()})
        assert as_json.status_code == case.server, as_json.text
    if case.server == 200:
        body = response.json()
        assert 0 <= body["label"] < 10 and abs(sum(body["probs"]) - 1) < 1e-4
    else:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and detail, detail
