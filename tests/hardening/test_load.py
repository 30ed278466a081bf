"""Load: bench/serve.py drives a real `cnnlab serve` with 50 concurrent clients, good and bad.

The bench's own bad requests (garbage base64, text as .png, empty upload, wrong JSON, missing
field, oversize body, 64-Mpx PNG) are extended with the image corpus's bad files (decompression
bomb header, corrupt JPEG, truncated PNG, GIFs the server does not take, a NaN float TIFF).
Requirements: no transport error, no 5xx, every good request 200 and every bad one 4xx; p99
latency reported; server memory (RSS sampled each second) not growing without bound. The suite
runs it for 12 s; the full 60 s run is recorded in README.md ("Reliability").
"""

from __future__ import annotations

import json

import pytest

from _bench import bench_script

SECONDS = 12
CLIENTS = 50


def corpus_bad_requests() -> list[tuple[str, dict]]:
    import _corpus as corpus

    out = []
    for case in corpus.CASES:
        if case.image is not None and case.server is not None and case.server >= 400:
            files = {"file": ("upload.png", case.image(), "image/png")}
            out.append((case.name, {"files": files}))
    out.append(("img-float-nan", {"files": {"file": ("x.tif", corpus.tiff_float_nan())}}))
    return out


@pytest.mark.slow
def test_50_clients_mixed_requests_no_5xx_bounded_memory(digits_run, tmp_path, monkeypatch):
    bench = bench_script("serve")
    extra = corpus_bad_requests()
    own = bench.bad_requests
    monkeypatch.setattr(bench, "bad_requests", lambda limit_mb: own(limit_mb) + extra)
    out = tmp_path / "load.json"
    rc = bench.main(
        ["--run", str(digits_run), "--clients", str(CLIENTS), "--seconds", str(SECONDS),
         "--bad-fraction", "0.3", "--timeout", "60", "--json", str(out)]
    )  # fmt: skip
    result = json.loads(out.read_text())
    why = json.dumps({k: result.get(k) for k in ("statuses", "error_kinds", "server_log_tail")})
    assert result["server_5xx"] == 0, why
    assert result["errors"] == 0 and rc == 0, why
    assert result["good_requests"] > 0 and result["requests"] > result["good_requests"]
    assert result["p99_ms"] is not None and result["good_p99_ms"] is not None
    statuses = {int(k) for k in result["statuses"]}
    assert statuses <= {200, 400, 413, 415, 422}, statuses
    rss = result["rss_mb"]
    assert rss["samples"] >= SECONDS // 2
    # bounded: the last quarter's mean within 25% (+32 MB of allocator slack) of the first's
    assert rss["mean_last_quarter"] <= 1.25 * rss["mean_first_quarter"] + 32, rss
