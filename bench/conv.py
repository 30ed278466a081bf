"""Benchmark cnnlab.ops.conv2d against scipy.signal.convolve2d, fftconvolve and a naive loop.

Usage:  python bench/conv.py [--repeats 5] [--mode same] [--out bench/results/conv.json]

For every image size n (n x n, float64) and kernel size m (m x m) the contenders run
interleaved (one call each per round, so machine noise hits all of them alike) for
``--repeats`` rounds; the table shows median CPU milliseconds (``time.process_time``; all
contenders are single-threaded, so CPU time is what a shared, busy machine measures fairly;
median wall-clock times are in the JSON too). cnnlab's "auto" choice is shown
with the method it picked, and cnnlab's forced direct / fft paths are measured too. The
notebook-000 naive loop is measured for n <= 256 only; for larger n its time is extrapolated
from n = 256 by the number of output pixels and marked with "~" (and "extrapolated" in JSON).

``--dtype int64`` measures the exact integer path instead: int64 images with values up to
2**20 and kernels up to 100, cnnlab (integer direct sums) against scipy.signal.convolve2d on
the same int64 arrays (also integer arithmetic) and cnnlab on their float64 copies (the
float path, for reference; it is exact only while every sum stays below 2**53).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.signal

from _common import peak_rss_mib  # bench/ is on the path
from cnnlab.ops import conv2d
from cnnlab.ops.backend import choose_method
from cnnlab.ops.reference import notebook_conv2d

NAIVE_MAX_N = 256


def median_ms(fns: dict, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Interleaved timing: ``repeats`` rounds of one call per contender.

    Returns median CPU milliseconds (``time.process_time``: every contender is single-threaded,
    so this is the fair figure on a shared machine) and median wall-clock milliseconds.
    """
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    wall: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            cpu[name].append((time.process_time() - c0) * 1e3)
            wall[name].append((time.perf_counter() - w0) * 1e3)
    med = statistics.median
    return {n: med(t) for n, t in cpu.items()}, {n: med(t) for n, t in wall.items()}


def naive_ms(x: np.ndarray, k: np.ndarray, mode: str) -> float:
    m = k.shape[0]
    p = {"same": (m // 2, m // 2), "valid": (0, 0), "full": (m - 1, m - 1)}[mode]
    start = time.process_time()
    notebook_conv2d(x, k, p=p)
    return (time.process_time() - start) * 1e3


def bench_case(n: int, m: int, mode: str, repeats: int, naive_cache: dict) -> dict:
    rng = np.random.default_rng(n * 100 + m)
    x, k = rng.standard_normal((n, n)), rng.standard_normal((m, m))
    fns = {
        "cnnlab": lambda: conv2d(x, k, mode),
        "scipy_direct": lambda: scipy.signal.convolve2d(x, k, mode),
        "scipy_fft": lambda: scipy.signal.fftconvolve(x, k, mode),
        "cnnlab_direct": lambda: conv2d(x, k, mode, method="direct"),
        "cnnlab_fft": lambda: conv2d(x, k, mode, method="fft"),
    }
    for fn in fns.values():
        fn()  # warm-up (plans, caches)
    ms, wall = median_ms(fns, repeats)
    ours, expected = conv2d(x, k, mode), scipy.signal.convolve2d(x, k, mode)
    err = float(np.max(np.abs(ours - expected)) / (np.abs(x).max() * np.abs(k).sum()))
    if n <= NAIVE_MAX_N:
        naive, extrapolated = naive_ms(x, k, mode), False
        naive_cache[m] = (naive, n)
    else:
        base, base_n = naive_cache[m]
        naive, extrapolated = base * (n / base_n) ** 2, True
    best = min(ms["scipy_direct"], ms["scipy_fft"])
    out_shape = ours.shape
    return {
        "n": n,
        "m": m,
        "mode": mode,
        "cnnlab_method": choose_method((n, n), k, out_shape),
        **{f"{name}_ms": round(v, 4) for name, v in ms.items()},
        **{f"{name}_wall_ms": round(v, 4) for name, v in wall.items()},
        "naive_ms": round(naive, 2),
        "naive_extrapolated": extrapolated,
        "ratio_to_best_scipy": round(ms["cnnlab"] / best, 3),
        "max_rel_error_vs_convolve2d": err,
    }


def bench_int_case(n: int, m: int, mode: str, repeats: int) -> dict:
    rng = np.random.default_rng(n * 100 + m)
    x, k = rng.integers(-(2**20), 2**20, (n, n)), rng.integers(-100, 101, (m, m))
    xf, kf = x.astype(np.float64), k.astype(np.float64)
    fns = {
        "cnnlab_int": lambda: conv2d(x, k, mode),
        "scipy_int": lambda: scipy.signal.convolve2d(x, k, mode),
        "cnnlab_float": lambda: conv2d(xf, kf, mode),
    }
    for fn in fns.values():
        fn()
    ms, wall = median_ms(fns, repeats)
    ours = conv2d(x, k, mode)
    return {
        "n": n,
        "m": m,
        "mode": mode,
        "dtype": "int64",
        **{f"{name}_ms": round(v, 4) for name, v in ms.items()},
        **{f"{name}_wall_ms": round(v, 4) for name, v in wall.items()},
        "ratio_to_scipy_int": round(ms["cnnlab_int"] / ms["scipy_int"], 3),
        "exact_vs_scipy_int": bool(np.array_equal(ours, scipy.signal.convolve2d(x, k, mode))),
    }


def int_table(rows: list[dict]) -> str:
    lines = [
        "| image | kernel | cnnlab int64 (exact) | scipy convolve2d int64 | cnnlab float64 "
        "| cnnlab / scipy |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']}x{r['n']} | {r['m']}x{r['m']} | {fmt(r['cnnlab_int_ms'])} "
            f"| {fmt(r['scipy_int_ms'])} | {fmt(r['cnnlab_float_ms'])} "
            f"| {r['ratio_to_scipy_int']:.2f} |"
        )
    return "\n".join(lines)


def fmt(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:,.0f}"


def table(rows: list[dict]) -> str:
    head = (
        "| image | kernel | cnnlab (method) | scipy convolve2d | scipy fftconvolve "
        "| notebook loop | cnnlab / best scipy |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        naive = ("~" if r["naive_extrapolated"] else "") + fmt(r["naive_ms"])
        lines.append(
            f"| {r['n']}x{r['n']} | {r['m']}x{r['m']} | {fmt(r['cnnlab_ms'])} "
            f"({r['cnnlab_method']}) | {fmt(r['scipy_direct_ms'])} | {fmt(r['scipy_fft_ms'])} "
            f"| {naive} | {r['ratio_to_best_scipy']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--kernels", default="3,7,15")
    parser.add_argument("--mode", default="same", choices=("same", "valid", "full"))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float64", choices=("float64", "int64"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "conv.json"))
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    kernels = [int(v) for v in args.kernels.split(",")]
    rows, naive_cache = [], {}
    for n in sorted(sizes):
        for m in kernels:
            if args.dtype == "int64":
                rows.append(bench_int_case(n, m, args.mode, args.repeats))
            else:
                rows.append(bench_case(n, m, args.mode, args.repeats, naive_cache))
            print(f"  done {n}x{n} * {m}x{m}", file=sys.stderr, flush=True)
    rss = peak_rss_mib()["self"]
    print(
        f"mode={args.mode!r}, {args.dtype}, median CPU milliseconds of {args.repeats} "
        "interleaved runs"
    )
    if args.dtype == "int64":
        print(int_table(rows))
        exact = sum(r["exact_vs_scipy_int"] for r in rows)
        print(f"cnnlab equal to scipy's int64 result in {exact}/{len(rows)} cases")
    else:
        print(table(rows))
        wins = sum(r["ratio_to_best_scipy"] <= 1.0 for r in rows)
        print(
            f"cnnlab at or under the faster scipy method in {wins}/{len(rows)} cases; "
            f"worst ratio {max(r['ratio_to_best_scipy'] for r in rows):.2f}"
        )
    print(f"Peak RSS: {rss:,.0f} MiB (this process)")
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "repeats": args.repeats,
        "mode": args.mode,
        "dtype": args.dtype,
        "peak_rss_mib": rss,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
