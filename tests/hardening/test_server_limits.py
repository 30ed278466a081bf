"""`cnnlab serve` under slow and silent clients: raw sockets to 127.0.0.1, bounded in count, time.

A real server process is started with short deadlines (headers 1 s, body 2 s) and a cap of 40
connections, then flooded with 90 connections that never finish their request: silent ones,
ones that stop inside their headers and ones that stop inside their body. Meanwhile
``/healthz`` must keep answering on fresh connections; afterwards every abusive connection must
have been closed by the server, its log must hold one line per aborted connection and no
traceback. A client that disconnects in the middle of an upload costs one log line too.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HEADER_S, BODY_S, CAP = 1.0, 2.0, 40
PER_KIND = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> int:
    """Status of a GET on a fresh connection (0 when the server did not answer in time)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return int(data.split()[1]) if data.startswith(b"HTTP/1.1") else 0
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def served(run: Path, tmp_path: Path, *flags: str):
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "cnnlab", "serve", str(run), "--port", str(port), *flags]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while _get(port, "/healthz", 2) != 200:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        yield port, log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _open(port: int, first: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first:
        s.sendall(first)
    return s


def _still_open(sockets: list[socket.socket], wait: float) -> list[socket.socket]:
    """The sockets the server has not closed within ``wait`` seconds (polled together)."""
    pending, deadline = list(sockets), time.monotonic() + wait
    while pending and time.monotonic() < deadline:
        readable, _, _ = select.select(pending, [], [], 0.2)
        for s in readable:
            try:
                closed = s.recv(4096) == b""
            except OSError:  # reset by the server
                closed = True
            if closed:
                pending.remove(s)
    return pending


HALF_HEADERS = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Ty"
HALF_BODY = (
    b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
    b"Content-Length: 100000\r\n\r\n" + b"\x89PNG" + bytes(200)
)


@pytest.mark.slow
def test_stalled_connections_are_closed_and_healthz_answers(digits_run, tmp_path):
    flags = ("--header-timeout", str(HEADER_S), "--body-timeout", str(BODY_S),
             "--max-connections", str(CAP), "--log-level", "warning")  # fmt: skip
    with served(digits_run, tmp_path, *flags) as (port, log):
        sockets = []
        try:
            for first in (b"", HALF_HEADERS, HALF_BODY):
                for _ in range(PER_KIND):
                    sockets.append(_open(port, first))
            # the cap is far below the 90 open connections: fresh requests still get through
            answers = [_get(port, "/healthz") for _ in range(5)]
            assert answers == [200] * 5, answers
            # every stalled connection is closed by the server once its deadline passes
            still_open = _still_open(sockets, BODY_S + 3)
            assert not still_open, f"{len(still_open)} of {len(sockets)} stalled connections open"
            assert _get(port, "/healthz") == 200
        finally:
            for s in sockets:
                s.close()
        # a client that vanishes in the middle of its upload
        s = _open(port, HALF_BODY)
        time.sleep(0.3)
        s.close()
        time.sleep(1.0)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    aborted = [line for line in text.splitlines() if "closed the connection" in line]
    assert len(aborted) >= 2 * PER_KIND, text[-3000:]
    assert len(aborted) <= 3 * PER_KIND + 5, text[-3000:]  # one line each, no repeats
    assert any("disconnected after" in line for line in text.splitlines()), text[-3000:]
