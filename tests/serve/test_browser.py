"""End to end: `cnnlab serve` in a real uvicorn process, driven by Debian's Chromium.

Draws digits on the page's canvas with mouse strokes, clicks Predict and reads the label the page
shows. Needs /usr/bin/chromium (`apt-get install chromium`, done by .ci/run) and the Playwright
Python package; it never downloads a browser. A missing browser FAILS the test, it is not skipped.

The screenshot goes to the test's tmp_path; set CNNLAB_SCREENSHOT_DIR (e.g. docs/img) to also
write serve-draw.png there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CNNLAB_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Strokes in fractions of the canvas, as a person would draw them.
DIGITS = {
    "7": [[(0.28, 0.22), (0.72, 0.22), (0.45, 0.82)]],
    "1": [[(0.50, 0.15), (0.50, 0.85)]],
}

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(args: list[str], log: Path):
    """`cnnlab ARGS --port P` on a free loopback port; yields its base URL, stops it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "cnnlab", *args, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"cnnlab {args[0]} exited with {proc.returncode}: {log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cnnlab {args[0]} did not answer /healthz in 120 s: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory):
    """`cnnlab serve RUN` on a free loopback port; yields its base URL, stops it afterwards."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(["serve", str(trained_run)], log) as url:
        yield url


@contextlib.contextmanager
def chromium(profile: Path, viewport: dict[str, int]):
    """A Playwright context of Debian's Chromium with a fresh profile; fails if it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make test` (it installs one: tools/ensure-chromium) "
            "or set CNNLAB_CHROMIUM to a Chromium binary"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        pytest.fail("the playwright Python package is missing: pip install playwright")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=viewport,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")  # fresh user-data-dir every run
    with chromium(profile, {"width": 1060, "height": 640}) as context:
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        tab.goto(server)
        tab.locator("#model-line", has_text="tutorial_cnn").wait_for()
        yield tab


def draw(page, strokes, canvas: str = "#pad") -> None:
    box = page.locator(canvas).bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=12)
        page.mouse.up()


def predict(page) -> str:
    page.click("#predict")
    page.wait_for_selector("body[data-state=done], body[data-state=error]")
    assert page.get_attribute("body", "data-state") == "done", page.inner_text("#status")
    return page.inner_text("#label").strip()


@pytest.mark.parametrize("digit", ["1", "7"])
def test_drawn_digit_is_recognised(page, digit, tmp_path):
    page.click("#clear")
    draw(page, DIGITS[digit])
    assert predict(page) == digit
    assert page.locator("#bars .row").count() == 10
    assert page.locator("#bars .row.top").get_attribute("data-cls") == digit
    assert page.locator("#feature-grid").count() == 1
    assert page.evaluate("document.getElementById('feature-grid').naturalWidth") == 8 * 27 - 1
    assert page.get_attribute("#seen", "src").startswith("data:image/png;base64,")
    seen = page.evaluate("document.getElementById('seen').naturalWidth")
    assert seen == 28
    if digit == "7":
        shot = tmp_path / "serve-draw.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        target = os.environ.get("CNNLAB_SCREENSHOT_DIR")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(target) / "serve-draw.png")


def test_clear_resets_the_page(page):
    draw(page, DIGITS["1"])
    page.click("#clear")
    assert page.inner_text("#label").strip() == "–"
    assert page.locator("#features img").count() == 0
    blank = page.evaluate(
        "(() => { const c = document.getElementById('pad');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let m = 0; for (let i = 0; i < d.length; i += 4) m = Math.max(m, d[i]); return m; })()"
    )
    assert blank == 0
