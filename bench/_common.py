"""What the bench scripts share: the machine description and writing a report.

Imported by the scripts in this folder (run as ``python bench/NAME.py``, so this folder is on
the path).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path


def cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ("model name", "flags", "cpu MHz"...)."""
    fields: dict[str, str] = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if not key:  # the first processor's block ends here
                break
            fields.setdefault(key, value.strip())
    return fields


def cpu_model() -> str:
    """The CPU's name with its family/model/stepping numbers ("AMD EPYC (family 25, model 17,
    stepping 1)"): a virtual machine's name alone ("AMD EPYC") does not say which CPU it is."""
    fields = cpuinfo()
    numbers = ", ".join(
        f"{label} {fields[key]}"
        for key, label in (("cpu family", "family"), ("model", "model"), ("stepping", "stepping"))
        if key in fields
    )
    name = fields.get("model name", "?")
    return f"{name} ({numbers})" if numbers else name


def machine() -> dict:
    """CPU model, usable cores, Python version, the date (UTC) and the 1-minute load average."""
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": round(os.getloadavg()[0], 2),
    }


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory (MiB) so far of this process and of its largest waited-for child."""
    return {
        who: round(resource.getrusage(flag).ru_maxrss / 1024, 1)  # KiB on Linux
        for who, flag in (("self", resource.RUSAGE_SELF), ("children", resource.RUSAGE_CHILDREN))
    }


def write_report(stem: str | Path, report: dict, markdown: Callable[[dict], str]) -> None:
    """``stem``.json (the numbers) and ``stem``.md (the table), and the table on stdout."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
