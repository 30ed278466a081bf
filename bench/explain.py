"""How long one explainer update takes on the server: every layer's maps for one image.

For each model, a 280x280 drawing (as the page sends it) goes through the app in process
(FastAPI's TestClient, no network): ``POST /explain/activations`` (decode, preprocess, forward
pass with every layer captured, base64 encoding; the ``ms`` the server reports) and
``POST /explain/unit`` for a unit of the last conv layer (forward + backward + arithmetic).
``compute`` is the forward pass and encoding alone. Times are per request, one torch thread, as
``cnnlab serve`` runs them. Untrained weights unless ``--run`` is given: the time does not depend
on the weights.

    python bench/explain.py                      # tutorial_cnn, model_a, speednet
    python bench/explain.py --run runs/tutorial_cnn-mnist --repeats 500
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from _common import peak_rss_mib  # bench/ is on the path

MODELS = ("tutorial_cnn", "model_a", "speednet")
BUDGET_MS = 50.0  # one full update for tutorial_cnn


def canvas_png() -> str:
    """A drawn 7 on the page's 280x280 black canvas, as base64 PNG."""
    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line([(80, 60), (200, 60), (120, 230)], fill=255, width=22)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def run_for(model_name: str, run: str | None):
    from cnnlab.data import Normalizer
    from cnnlab.models import create_model
    from cnnlab.run import Run, load

    if run:
        return load(run)
    return Run(
        model=create_model(model_name).eval(),
        normalizer=Normalizer("unit"),
        classes=tuple("0123456789"),
        input_shape=(1, 28, 28),
        dataset="mnist",
    )


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "max": float(a.max()),
        "mean": float(a.mean()),
    }


def bench_model(name: str, run: str | None, repeats: int) -> dict:
    from fastapi.testclient import TestClient

    from cnnlab.serve.app import create_app
    from cnnlab.serve.explain import Explainer
    from cnnlab.serve.explain_api import activations_document

    loaded = run_for(name, run)
    png = canvas_png()
    with TestClient(create_app(loaded)) as client:
        layers = client.get("/explain/model").json()["layers"]
        last_conv = [la for la in layers if la["category"] == "conv"][-1]
        c, h, w = last_conv["shape"]
        unit = {"layer": last_conv["name"], "channel": c - 1, "row": h // 2, "col": w // 2}
        for _ in range(5):  # warm up: first calls allocate
            client.post("/explain/activations", json={"image": png})
        server, total, units = [], [], []
        for _ in range(repeats):
            t = time.perf_counter()
            r = client.post("/explain/activations", json={"image": png})
            total.append((time.perf_counter() - t) * 1000)
            server.append(r.json()["ms"])
        for _ in range(max(1, repeats // 4)):
            units.append(client.post("/explain/unit", json={"image": png, **unit}).json()["ms"])
        image = client.app.state.service.prepare_bytes(base64.b64decode(png))
        ex = Explainer.from_run(loaded)
        compute = []
        for _ in range(repeats):
            t = time.perf_counter()
            activations_document(ex, image, t)
            compute.append((time.perf_counter() - t) * 1000)
        size = len(r.content)
    return {
        "model": name,
        "layers": len(layers),
        "response_bytes": size,
        "compute_ms": stats(compute),
        "server_ms": stats(server),
        "round_trip_ms": stats(total),
        "unit_ms": stats(units),
        "unit": unit,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    p.add_argument("--run", help="a trained run to time instead (its model only)")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--threads", type=int, default=1, help="torch threads (cnnlab serve: 1)")
    p.add_argument("--out", default="bench/results/explain.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = ["run"] if args.run else args.models.split(",")
    rows = [bench_model(n, args.run, args.repeats) for n in names]
    print(f"explainer update, {args.repeats} requests each, {args.threads} torch thread(s)")
    print(f"CPU: {cpu_model()}; load average before: {os.getloadavg()[0]:.2f}")
    header = (
        f"{'model':<14}{'layers':>7}{'KB':>7}{'compute p50':>13}{'server p50':>12}"
        f"{'server p90':>12}{'round trip p50':>16}{'unit p50':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['model']:<14}{r['layers']:>7}{r['response_bytes'] / 1024:>7.0f}"
            f"{r['compute_ms']['p50']:>13.2f}{r['server_ms']['p50']:>12.2f}"
            f"{r['server_ms']['p90']:>12.2f}{r['round_trip_ms']['p50']:>16.2f}"
            f"{r['unit_ms']['p50']:>10.2f}"
        )
    print("times in ms; server = decode + preprocess + every layer + encoding, as reported")
    rss = peak_rss_mib()["self"]
    print(f"Peak RSS: {rss:,.0f} MiB (this process: the app and all models, in turn)")
    doc = {
        "cpu": cpu_model(),
        "load_average": list(os.getloadavg()),
        "torch_threads": args.threads,
        "repeats": args.repeats,
        "budget_ms": BUDGET_MS,
        "results": rows,
        "peak_rss_mib": rss,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
