"""Helpers of the browser tests: a `cnnlab` server on a free port, Debian's Chromium, strokes.

Needs /usr/bin/chromium (`apt-get install chromium`, done by .ci/run) and the Playwright Python
package; it never downloads a browser. A missing browser FAILS the test, it is not skipped.
"""

from __future__ import annotations

import contextlib
import os
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


def draw(page, strokes, canvas: str = "#pad") -> None:
    box = page.locator(canvas).bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=12)
        page.mouse.up()
