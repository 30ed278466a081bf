"""tools/ensure-chromium: `make test` finds or installs a Chromium, or says in one line how."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "ensure-chromium"


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    return subprocess.run(
        [str(SCRIPT), "/bin/false"], env={**base, **env}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_prints_an_existing_chromium(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    proc = _run(tmp_path, CHROMIUM_CANDIDATES=str(fake))
    assert proc.returncode == 0
    assert proc.stdout.strip() == str(fake)


def test_machine_without_chromium_or_installer_gets_one_line_and_fails(tmp_path):
    # no candidate exists, apt-get fails, and the python given cannot run playwright
    proc = _run(tmp_path, CHROMIUM_CANDIDATES=str(tmp_path / "none"), APT_GET="false")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("make test:")]
    assert len(lines) == 1
    assert "apt-get install chromium" in lines[0] and "playwright install chromium" in lines[0]
    assert proc.stdout == ""


def test_apt_is_used_when_root(tmp_path):
    if os.geteuid() != 0:
        return  # the apt branch is only taken as root; nothing to check as a normal user
    log = tmp_path / "apt.log"
    apt = tmp_path / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 1\n')  # records, installs nothing
    apt.chmod(0o755)
    proc = _run(tmp_path, CHROMIUM_CANDIDATES=str(tmp_path / "none"), APT_GET=str(apt))
    assert proc.returncode == 1
    assert "update" in log.read_text()
