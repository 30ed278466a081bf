"""What the bench scripts share: the machine description and writing a report.

Imported by the scripts in this folder (run as ``python bench/NAME.py``, so this folder is on
the path).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path


def machine() -> dict:
    """CPU model, usable cores, Python version, the date (UTC) and the 1-minute load average."""
    with open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": round(os.getloadavg()[0], 2),
    }


def write_report(stem: str | Path, report: dict, markdown: Callable[[dict], str]) -> None:
    """``stem``.json (the numbers) and ``stem``.md (the table), and the table on stdout."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
