"""Live training: the server-sent events of `cnnlab train --live` and the /train page.

The browser test trains a small speednet in a thread of the test process (the library path the
CLI flag uses), with the page already open, and waits until the page has drawn every evaluation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request

import pytest
from _browser import chromium

from cnnlab.serve.live import LiveServer, LiveTraining


def read_events(url: str, count: int) -> list[tuple[str, dict]]:
    """The first ``count`` events of the stream at ``url``."""
    out = []
    with urllib.request.urlopen(url, timeout=10) as stream:
        kind = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[6:])))
                if len(out) == count:
                    return out
    return out


def test_events_reach_every_listener_and_late_ones_get_the_history():
    server = LiveServer(port=0).start()
    try:
        server.publish("start", {"model": "m"})
        for step in (10, 20):
            server.publish("step", {"step": step, "loss": 1.0 / step})
        late = read_events(f"http://127.0.0.1:{server.port}/train/events", 2)
        # only the latest running loss is replayed
        assert late == [("start", {"model": "m"}), ("step", {"step": 20, "loss": 0.05})]
        got: list = []
        reader = threading.Thread(
            target=lambda: got.extend(
                read_events(f"http://127.0.0.1:{server.port}/train/events", 3)
            )
        )
        reader.start()
        server.publish("end", {"step": 20})
        reader.join(10)
        assert got[-1] == ("end", {"step": 20})
        with urllib.request.urlopen(server.url, timeout=5) as page:
            assert b"/static/train.js" in page.read()
            assert page.headers["Content-Security-Policy"] == "default-src 'self'"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/etc/passwd", timeout=5)
        assert err.value.code == 404
    finally:
        server.close()


def test_port_in_use_is_one_line():
    first = LiveServer(port=0).start()
    try:
        from cnnlab.errors import CnnlabError

        with pytest.raises(CnnlabError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            LiveServer(port=first.port).start()
        with pytest.raises(CnnlabError, match="--live 70000 is not a TCP port"):
            LiveServer(port=70000).start()
    finally:
        first.close()


def test_cli_flag_starts_the_live_page(shared_data, tmp_path):
    cmd = [sys.executable, "-m", "cnnlab", "train", "--model", "speednet", "--dataset", "mnist"]
    cmd += ["--data-dir", str(shared_data / "mnist"), "--limit-train", "300", "--max-steps", "3"]
    cmd += ["--val-size", "50", "--threads", "1", "--runs-dir", str(tmp_path), "--live", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "watch it train at http://127.0.0.1:" in done.stdout + done.stderr


@pytest.mark.browser
def test_page_redraws_every_evaluation(shared_data, tmp_path):
    from cnnlab.config import TrainConfig
    from cnnlab.engine import fit

    config = TrainConfig(
        model="tutorial_cnn",
        dataset="mnist",
        data_dir=str(shared_data / "mnist"),
        limit_train=1200,
        epochs=1,
        batch_size=32,
        eval_every=12,
        val_size=100,
        threads=1,
        runs_dir=str(tmp_path / "runs"),
    )
    server = LiveServer(port=0).start()
    result: dict = {}
    try:
        with chromium(tmp_path / "profile", {"width": 1280, "height": 900}) as ctx:
            page = ctx.new_page()
            page.set_default_timeout(120_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url)
            training = threading.Thread(
                target=lambda: result.setdefault(
                    "fit", fit(config, callbacks=[LiveTraining(server)])
                )
            )
            training.start()
            page.wait_for_selector("body[data-evaluations='3']")
            shot = tmp_path / "explain-live.png"
            page.screenshot(path=str(shot), full_page=True)
            page.wait_for_selector("body[data-state=finished]")
            training.join(60)
            evaluations = len(result["fit"].history)
            assert page.get_attribute("body", "data-evaluations") == str(evaluations)
            assert page.locator("[data-testid=kernel-row] canvas").count() == 32
            assert page.locator("[data-testid=live-maps]").count() == 3  # conv1..conv3
            assert "finished: step" in page.get_by_test_id("train-progress").inner_text()
            assert not errors
    finally:
        server.close()
    assert shot.stat().st_size > 10_000
