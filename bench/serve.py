"""Bounded load test for ``cnnlab serve``: N concurrent clients for T seconds, loopback only.

Either point it at a running server (``--url http://127.0.0.1:8000``, optionally ``--pid`` to
sample its memory) or let it start one (``--run RUN``: ``cnnlab serve`` on a free loopback port,
stopped at the end). Each client loops: pick a request, send it, record status and latency, until
the deadline; the script then stops by itself and prints (and optionally writes as JSON)
requests/s, p50/p99 latency, the status histogram, error count and server RSS samples.

Good requests are real MNIST test digits as PNG, alternating JSON base64 and multipart uploads.
With ``--bad-fraction`` a share of requests are bad inputs (garbage base64, a text file named
.png, an empty upload, wrong JSON, a missing field, an oversize body, a huge-pixel PNG); an error
is any transport failure, any 5xx, a good request that is not 200 or a bad one that is not 4xx.

    python bench/serve.py --run runs/tutorial_cnn-mnist --clients 50 --seconds 60 --bad-fraction 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image

from _common import peak_rss_mib  # bench/ is on the path


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def good_images(count: int) -> list[bytes]:
    """MNIST test digits as PNGs (the shared data); a drawn bar if the data is missing."""
    try:
        from cnnlab.data import load_dataset

        images = load_dataset("mnist", "test", download=False).images[:count, 0].numpy()
    except Exception:  # the bench must still run without the dataset
        bar = np.zeros((28, 28), np.uint8)
        bar[4:24, 13:16] = 255
        images = np.stack([bar] * count)
    return [png_bytes(im) for im in images]


def bad_requests(limit_mb: float) -> list[tuple[str, dict]]:
    """(name, httpx request kwargs) for bad inputs the server must answer with a 4xx."""
    huge = io.BytesIO()
    Image.new("L", (8000, 8000)).save(huge, format="PNG")  # 64 Mpx, ~70 KB compressed
    big = os.urandom(int(limit_mb * 1024 * 1024) + 1024)
    return [
        ("bad-base64", {"json": {"image": "not base64!!"}}),
        ("text-as-png", {"files": {"file": ("x.png", b"hello, not a png", "image/png")}}),
        ("empty-file", {"files": {"file": ("x.png", b"", "image/png")}}),
        ("wrong-json", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("missing-field", {"json": {"picture": "abc"}}),
        ("oversize", {"files": {"file": ("big.png", big, "image/png")}}),
        ("huge-pixels", {"files": {"file": ("huge.png", huge.getvalue(), "image/png")}}),
    ]


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise SystemExit(f"refusing to load-test {url}: only loopback addresses are allowed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{url}/healthz", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"server at {url} did not become ready in {timeout:.0f} s")


async def client_loop(client, url, deadline, goods, bads, bad_fraction, rng, records):
    i = 0
    while time.monotonic() < deadline:
        if bads and rng.random() < bad_fraction:
            name, kwargs = bads[rng.randrange(len(bads))]
            expect_ok = False
        else:
            data = goods[rng.randrange(len(goods))]
            name, expect_ok = "good", True
            if i % 2:
                kwargs = {"files": {"file": ("digit.png", data, "image/png")}}
            else:
                kwargs = {"json": {"image": base64.b64encode(data).decode()}}
        i += 1
        start = time.perf_counter()
        try:
            response = await client.post(f"{url}/predict", **kwargs)
            status = response.status_code
        except httpx.HTTPError as exc:
            status = f"transport:{type(exc).__name__}"
        records.append((name, expect_ok, status, time.perf_counter() - start))


async def sample_rss(pid: int | None, stop: asyncio.Event, samples: list, every: float = 1.0):
    if pid is None:
        return
    import psutil

    proc = psutil.Process(pid)
    t0 = time.monotonic()
    while not stop.is_set():
        samples.append((round(time.monotonic() - t0, 1), proc.memory_info().rss))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def vm_hwm_mib(pid: int | None) -> float | None:
    """Peak RSS (VmHWM) in MiB of a running process, None if unknown."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def is_error(expect_ok: bool, status) -> bool:
    """Transport failures and 5xx always; otherwise good must be 200 and bad must be 4xx."""
    if not isinstance(status, int) or status >= 500:
        return True
    return status != 200 if expect_ok else not 400 <= status < 500


def summarize(records, seconds, samples) -> dict:
    lat = np.array([r[3] for r in records]) * 1000.0
    good = np.array([r[3] for r in records if r[0] == "good"]) * 1000.0
    statuses: dict[str, int] = {}
    errors = 0
    error_kinds: dict[str, int] = {}
    for name, expect_ok, status, _ in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if is_error(expect_ok, status):
            errors += 1
            kind = f"{name} -> {status}"
            error_kinds[kind] = error_kinds.get(kind, 0) + 1
    pct = lambda a, q: round(float(np.percentile(a, q)), 2) if len(a) else None  # noqa: E731
    out = {
        "requests": len(records),
        "good_requests": int(len(good)),
        "seconds": round(seconds, 2),
        "requests_per_s": round(len(records) / seconds, 1),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "good_p50_ms": pct(good, 50),
        "good_p99_ms": pct(good, 99),
        "errors": errors,
        "server_5xx": sum(v for k, v in statuses.items() if k.isdigit() and int(k) >= 500),
        "statuses": dict(sorted(statuses.items())),
        "error_kinds": error_kinds,
    }
    if samples:
        rss = [s[1] / 2**20 for s in samples]
        n = max(1, len(rss) // 4)
        out["rss_mb"] = {
            "first": round(rss[0], 1),
            "max": round(max(rss), 1),
            "last": round(rss[-1], 1),
            "mean_first_quarter": round(float(np.mean(rss[:n])), 1),
            "mean_last_quarter": round(float(np.mean(rss[-n:])), 1),
            "samples": len(rss),
        }
    return out


async def run_load(args, url: str, pid: int | None) -> dict:
    await wait_ready(url)
    goods = good_images(200)
    bads = bad_requests(args.max_upload_mb) if args.bad_fraction > 0 else []
    # idle connections are dropped well before the server closes them (its --keep-alive), so a
    # transport error here is the server's fault, not a keep-alive race
    limits = httpx.Limits(
        max_connections=args.clients, max_keepalive_connections=args.clients, keepalive_expiry=2.0
    )
    records: list = []
    samples: list = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(limits=limits, timeout=args.timeout) as client:
        sampler = asyncio.create_task(sample_rss(pid, stop, samples))
        start = time.monotonic()
        deadline = start + args.seconds
        await asyncio.gather(
            *(
                client_loop(
                    client,
                    url,
                    deadline,
                    goods,
                    bads,
                    args.bad_fraction,
                    random.Random(args.seed + k),
                    records,
                )
                for k in range(args.clients)
            )
        )
        elapsed = time.monotonic() - start
        stop.set()
        await sampler
    return summarize(records, elapsed, samples)


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "cnnlab", "serve", args.run, "--host", "127.0.0.1",
        "--port", str(port), "--max-upload-mb", str(args.max_upload_mb), "--log-level", "warning",
        "--keep-alive", str(args.keep_alive),
    ]  # fmt: skip
    # stderr goes to a file: a pipe nobody reads would block the server once 64 KB are logged
    log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server; closed with it)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log
    return proc, f"http://127.0.0.1:{port}"


def log_tail(proc, lines: int = 20) -> list[str]:
    """The last lines the server wrote to stderr (warnings, tracebacks)."""
    proc.log.seek(0)
    text = proc.log.read().decode(errors="replace")
    return text.splitlines()[-lines:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server on a loopback address")
    where.add_argument("--run", help="start `cnnlab serve RUN` on a free loopback port")
    parser.add_argument("--pid", type=int, help="server process id to sample RSS (with --url)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bad-fraction", type=float, default=0.0, help="share of bad requests")
    parser.add_argument("--max-upload-mb", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    parser.add_argument("--keep-alive", type=float, default=30.0,
                        help="server idle-connection timeout (s), with --run")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not (0 < args.seconds <= 600 and 0 < args.clients <= 500):
        parser.error("keep it bounded: 0 < --seconds <= 600 and 0 < --clients <= 500")
    proc = None
    if args.run:
        proc, url = start_server(args)
        pid = proc.pid
    else:
        url, pid = args.url.rstrip("/"), args.pid
    check_loopback(url)
    server_peak = None
    try:
        result = asyncio.run(run_load(args, url, pid))
        server_peak = vm_hwm_mib(pid)  # --url with --pid; a started server is measured below
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    rss = peak_rss_mib()
    if proc is not None:
        result["server_log_tail"] = log_tail(proc)
        proc.log.close()
        server_peak = rss["children"]  # the server, our only child, has been waited for
    result["peak_rss_mib"] = {"load_generator": rss["self"], "server": server_peak}
    result.update(clients=args.clients, bad_fraction=args.bad_fraction, url=url)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
