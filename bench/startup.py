"""How much of `cnnlab train --recipe fast` is training: wall vs train_seconds vs import torch.

Each repeat runs, alternating, `python -c "import torch"` and `cnnlab train --recipe fast --json`
(fresh processes, a temporary runs folder) and records the command's wall time and the
train_seconds it reports. The overhead is wall - train_seconds; the goal is an overhead of at
most `import torch` + 0.5 s. One more run under `python -X importtime` lists the heavy modules
the command imported, and one under cProfile splits the overhead into its parts.

    python bench/startup.py                 # 5 repeats (writes bench/results/startup.{json,md})
    python bench/startup.py --repeats 2 --recipe fast --out /tmp/startup
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, peak_rss_mib, write_report  # bench/ is on the path

RESULTS = Path(__file__).resolve().parent / "results"
HEAVY = ("torch._dynamo", "sympy", "matplotlib", "scipy", "pandas")
# Functions whose cumulative time makes up the overhead (the profile's names).
PARTS = {
    "import cnnlab.engine (torch)": ("cnnlab/engine/__init__.py", "<module>"),
    "prepare data (read, split, normalise)": ("engine/data_setup.py", "prepare_data"),
    "  of which: inflate + parse the IDX files": ("data/idx.py", "_read_idx_cached"),
    "build model": ("models/registry.py", "create_model"),
    "evaluate": ("engine/evaluate.py", "evaluate"),
    "save checkpoints": ("engine/checkpoint.py", "save_checkpoint"),
    "save safetensors": ("engine/checkpoint.py", "save_safetensors"),
    "curves.png": ("viz/curves_png.py", "draw_curves"),
}


def timed(cmd: list[str], cwd: str) -> tuple[float, str, float]:
    """Wall seconds, stdout and peak RSS in MiB (its ru_maxrss, from wait4) of one run of cmd."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-2000:]}")
        return wall, out.read().decode(), round(usage.ru_maxrss / 1024, 1)  # KiB -> MiB


def train_cmd(recipe: str, extra: list[str]) -> list[str]:
    return [sys.executable, *extra, "-m", "cnnlab", "train", "--recipe", recipe, "--json",
            "--runs-dir", "runs"]  # fmt: skip


def heavy_imports(recipe: str, cwd: str) -> list[str]:
    """Top-level names of HEAVY modules the command imports (python -X importtime)."""
    proc = subprocess.run(
        train_cmd(recipe, ["-X", "importtime"]), cwd=cwd, capture_output=True, text=True
    )
    names = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    return [m for m in HEAVY if m in names]


def overhead_parts(recipe: str, cwd: str) -> dict[str, float]:
    """Cumulative seconds of PARTS in one cProfiled run (profiling slows everything a little)."""
    import pstats

    prof = Path(cwd) / "train.prof"
    subprocess.run(
        train_cmd(recipe, ["-m", "cProfile", "-o", str(prof)]),
        cwd=cwd,
        capture_output=True,
        check=True,
    )
    stats = pstats.Stats(str(prof)).stats  # {(file, line, func): (cc, nc, tt, ct, callers)}
    out = {}
    for label, (file_end, func) in PARTS.items():
        hits = [v[3] for (f, _, fn), v in stats.items() if f.endswith(file_end) and fn == func]
        out[label] = round(max(hits), 3) if hits else 0.0
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    rows = [
        f"`cnnlab train --recipe {report['recipe']}` on {m['cpu']} ({m['cores']} cores), "
        f"{m['date']}, load average {report['load_before']} before / {report['load_after']} "
        f"after; {len(report['runs'])} repeats, median (min-max).",
        "",
        "| measure | seconds |",
        "| --- | ---: |",
    ]
    for key, label in (
        ("wall", "command wall time"),
        ("train_seconds", "train_seconds (reported)"),
        ("overhead", "wall - train_seconds"),
        ("import_torch", "`python -c 'import torch'`"),
        ("margin", "overhead - import torch (goal <= 0.5)"),
    ):
        s = report["summary"][key]
        rows.append(f"| {label} | {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f}) |")
    train, torch_ = (
        report["summary"]["train_peak_rss_mib"],
        report["summary"]["import_torch_peak_rss_mib"],
    )
    rss = report["peak_rss_mib"]
    rows += [
        "",
        f"Peak RSS: `cnnlab train` {train['median']:,.0f} MiB ({train['min']:,.0f}-"
        f"{train['max']:,.0f}), `import torch` {torch_['median']:,.0f} MiB; this script "
        f"{rss['self']:,.0f} MiB, its largest child (the importtime and cProfile runs too) "
        f"{rss['children']:,.0f} MiB.",
        "",
        f"Heavy modules imported: {', '.join(report['heavy_imports']) or 'none'}.",
        "",
    ]
    if report.get("parts"):
        rows += ["| part of the overhead (one cProfiled run) | seconds |", "| --- | ---: |"]
        rows += [f"| {k} | {v:.2f} |" for k, v in report["parts"].items()]
    return "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--recipe", default="fast")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile breakdown")
    p.add_argument("--out", default=str(RESULTS / "startup"), help="path stem for .json/.md")
    args = p.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    runs = []
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.repeats):
            torch_wall, _, torch_rss = timed([sys.executable, "-c", "import torch"], work)
            wall, out, train_rss = timed(train_cmd(args.recipe, []), work)
            train = json.loads(out.strip().splitlines()[-1])["train_seconds"]
            runs.append(
                {
                    "wall": round(wall, 3),
                    "train_seconds": train,
                    "overhead": round(wall - train, 3),
                    "import_torch": round(torch_wall, 3),
                    "margin": round(wall - train - torch_wall, 3),
                    "train_peak_rss_mib": train_rss,
                    "import_torch_peak_rss_mib": torch_rss,
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
        heavy = heavy_imports(args.recipe, work)
        parts = {} if args.no_profile else overhead_parts(args.recipe, work)
    summary = {
        key: {
            "median": statistics.median(r[key] for r in runs),
            "min": min(r[key] for r in runs),
            "max": max(r[key] for r in runs),
        }
        for key in runs[0]
    }
    report = {
        "recipe": args.recipe,
        "machine": machine(),
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 2),
        "runs": runs,
        "summary": summary,
        "heavy_imports": heavy,
        "parts": parts,
        "peak_rss_mib": peak_rss_mib(),
        "command": "python bench/startup.py " + " ".join(sys.argv[1:]),
    }
    write_report(args.out, report, markdown)


if __name__ == "__main__":
    main()
