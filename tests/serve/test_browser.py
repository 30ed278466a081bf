"""End to end: `cnnlab serve` in a real uvicorn process, driven by Debian's Chromium.

Draws digits on the page's canvas with mouse strokes, clicks Predict and reads the label the page
shows. Needs /usr/bin/chromium (`apt-get install chromium`, done by .ci/run) and the Playwright
Python package; it never downloads a browser. A missing browser FAILS the test, it is not skipped.

The screenshot goes to the test's tmp_path; set CNNLAB_SCREENSHOT_DIR (e.g. docs/img) to also
write serve-draw.png there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _browser import DIGITS, chromium, draw, running_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory):
    """`cnnlab serve RUN` on a free loopback port; yields its base URL, stops it afterwards."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with running_server(["serve", str(trained_run)], log) as url:
        yield url


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")  # fresh user-data-dir every run
    with chromium(profile, {"width": 1060, "height": 640}) as context:
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        tab.goto(server)
        tab.locator("#model-line", has_text="tutorial_cnn").wait_for()
        yield tab


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
