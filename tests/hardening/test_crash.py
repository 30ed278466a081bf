"""Crash safety: SIGKILL `cnnlab train` at seeded random moments, resume, compare bit for bit.

Ten trials, each a fresh run folder: kill the run (during a training batch, at an evaluation,
half-way through writing ``last.pt`` / ``best.pt`` / ``best.safetensors``, between the fsync and
the rename, or from outside at a random time), load every checkpoint left on disk (none may be
unreadable), resume with ``cnnlab train --resume RUN``, and require the resumed run to finish with
weights bit-identical to one uninterrupted run with the same seed. Runs are forked from a
pre-warmed launcher (``_zygote.py``) that runs the real ``cnnlab.cli.main``; see its docstring.
SIGINT is tested on the real ``cnnlab`` console script: a clean stop that writes ``last`` and
says how to resume.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnlab.engine.checkpoint import load_checkpoint

HERE = Path(__file__).parent
CLI = Path(sys.executable).with_name("cnnlab")
SEED = 2026  # seeds the trial plan: which moment each trial dies at

# tutorial_cnn has dropout (exercises the RNG restore); --augment draws per-batch shifts.
# 500 training images in batches of 50: 10 steps per epoch, 20 in all; validation every 5 steps
# (the loss falls each time, so best.pt + best.safetensors are written at all four); `last`
# every 3 steps and at epoch ends.
TRAIN = [
    "train", "--dataset", "digits", "--model", "tutorial_cnn", "--limit-train", "600",
    "--val-size", "100", "--batch-size", "50", "--epochs", "2", "--eval-every", "5",
    "--checkpoint-every", "3", "--optimizer", "adam", "--lr", "0.003", "--schedule", "cosine",
    "--augment", "--deterministic", "--threads", "1", "--seed", "7",
    "--runs-dir", "runs", "--name", "crash", "--quiet",
]  # fmt: skip
TOTAL_STEPS = 20
RUN = Path("runs/crash/version_0")


class Zygote:
    """Client of ``_zygote.py``: start `cnnlab` jobs in forked children, kill, collect codes."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_zygote.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self._read(120) == {"ready": True}

    def _read(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        assert line, "the zygote died"
        return json.loads(line)

    def run(self, cwd: Path, argv: list[str], plan: dict | None = None, kill_after=None) -> int:
        """Run ``cnnlab argv`` in ``cwd``; SIGKILL it after ``kill_after`` s if still running."""
        job = {"cwd": str(cwd), "argv": argv, "plan": plan}
        job.update(stdout=str(cwd / "stdout.log"), stderr=str(cwd / "stderr.log"))
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        pid = self._read(60)["pid"]
        if kill_after is not None:
            done = self._read(kill_after)
            if done is not None:
                return done["rc"]
            os.kill(pid, signal.SIGKILL)
        done = self._read(300)
        assert done is not None, f"cnnlab {' '.join(argv)} did not finish in 300 s"
        return done["rc"]

    def close(self) -> None:
        self.proc.stdin.close()  # the zygote's loop ends at EOF
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def zygote():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    z = Zygote(env)
    yield z
    z.close()


@pytest.fixture(scope="module")
def reference(zygote, tmp_path_factory):
    """One uninterrupted run: its final weights, history, and wall time."""
    cwd = tmp_path_factory.mktemp("reference")
    t0 = time.monotonic()
    rc = zygote.run(cwd, TRAIN)
    seconds = time.monotonic() - t0
    assert rc == 0, (cwd / "stderr.log").read_text()
    last = load_checkpoint(cwd / RUN / "checkpoints" / "last.pt")
    assert last["step"] == TOTAL_STEPS
    return {"last": last, "best": load_checkpoint(cwd / RUN / "checkpoints" / "best.pt"),
            "seconds": seconds}  # fmt: skip


def trial_plans(seed: int = SEED) -> list[dict]:
    """Ten kill moments, drawn with a seeded RNG inside each kind's sensible range."""
    rng = random.Random(seed)
    frac = lambda: round(rng.uniform(0.05, 0.95), 3)  # noqa: E731 - share of bytes written
    return [
        {"kind": "batch", "at": rng.randint(4, 9)},  # mid first epoch
        {"kind": "batch", "at": rng.randint(11, 19)},  # mid second epoch
        {"kind": "eval", "at": rng.randint(1, 3)},
        {"kind": "eval", "at": 4},  # the final evaluation: nearly done
        {"kind": "write-last", "at": rng.randint(2, 5), "frac": frac()},
        {"kind": "write-best", "at": rng.randint(2, 3), "frac": frac()},
        {"kind": "write-safetensors", "at": rng.randint(1, 3), "frac": frac()},
        {"kind": "rename", "at": rng.randint(2, 6)},
        {"kind": "timer", "at": 0, "frac": round(rng.uniform(0.15, 0.65), 3)},
        {"kind": "timer", "at": 0, "frac": round(rng.uniform(0.15, 0.65), 3)},
    ]


def checkpoints_on_disk(run: Path) -> list[Path]:
    """Every checkpoint file a user could pick up (temp files start with '.')."""
    found = [*run.rglob("*.pt"), *run.rglob("*.safetensors")]
    return sorted(p for p in found if not p.name.startswith("."))


def assert_same_weights(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(10))
def test_sigkill_then_resume_is_bit_identical(trial, zygote, reference, tmp_path):
    plan = trial_plans()[trial]
    kill_after = None
    if plan["kind"] == "timer":  # from outside, at a random share of an uninterrupted run
        kill_after, plan = plan["frac"] * reference["seconds"], None
    rc = zygote.run(tmp_path, TRAIN, plan, kill_after=kill_after)
    run = tmp_path / RUN
    stderr = (tmp_path / "stderr.log").read_text()
    assert "Traceback" not in stderr, stderr
    if rc == 0:  # a timer that fired after the end: nothing to resume, still a valid trial
        assert kill_after is not None
    else:
        assert rc == -signal.SIGKILL, stderr

    on_disk = checkpoints_on_disk(run)
    for path in on_disk:
        load_checkpoint(path)  # raises CheckpointError on a torn or partial file
    last_path = run / "checkpoints" / "last.pt"
    step = load_checkpoint(last_path)["step"] if last_path.is_file() else None
    temps = sorted(p.name for p in run.rglob(".*tmp*"))
    print(f"\ntrial {trial}: {plan or f'timer {kill_after:.2f} s'} -> rc {rc}; last.pt at step "
          f"{step}; {len(on_disk)} checkpoints loaded OK; temp files left: {temps}")  # fmt: skip
    if rc == 0:
        return
    again = ["train", "--resume", str(RUN), "--quiet"]
    if not (run / "checkpoints" / "last.pt").is_file():
        # only a timed kill may land before the first checkpoint: the user starts again
        assert kill_after is not None, f"{plan}: nothing to resume from"
        again, run = TRAIN, tmp_path / "runs" / "crash" / "version_1"
    rc = zygote.run(tmp_path, again)
    assert rc == 0, (tmp_path / "stderr.log").read_text()
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["step"] == TOTAL_STEPS
    assert_same_weights(last["model_state"], reference["last"]["model_state"], "final weights")
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert_same_weights(best["model_state"], reference["best"]["model_state"], "best weights")
    history = [r["val_loss"] for r in last["history"]]
    assert history == [r["val_loss"] for r in reference["last"]["history"]]
    leftovers = sorted(p.name for p in run.rglob(".*tmp*"))
    assert not leftovers, f"temp files left after the resumed run finished: {leftovers}"


def _wait_for_first_last(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training ended (rc={proc.returncode}) before its first `last` checkpoint")
        if path.is_file():
            return
        time.sleep(0.02)
    pytest.fail(f"no {path} after {timeout} s")


@pytest.mark.slow
def test_sigint_stops_cleanly_saves_last_and_says_how_to_resume(zygote, reference, tmp_path):
    """Ctrl-C on the real console script: exit 130, `last` at a batch boundary, resume hint."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [str(CLI), *TRAIN], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # a suite started in the background by a non-interactive shell inherits SIGINT ignored
        # (POSIX); give the child the default disposition, as a terminal's Ctrl-C would find it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    last = tmp_path / RUN / "checkpoints" / "last.pt"
    try:
        _wait_for_first_last(last, proc)  # written at step 3 of 20
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"cnnlab: resume with: cnnlab train --resume {RUN}\n" in err
    stopped = load_checkpoint(last)
    assert 3 <= stopped["step"] < TOTAL_STEPS
    assert f"stopped at step {stopped['step']}, saved {RUN}/checkpoints/last.pt" in err
    assert not sorted(p.name for p in (tmp_path / RUN).rglob(".*tmp*"))

    rc = zygote.run(tmp_path, ["train", "--resume", str(RUN), "--quiet"])
    assert rc == 0, (tmp_path / "stderr.log").read_text()
    final = load_checkpoint(last)
    assert final["step"] == TOTAL_STEPS
    assert_same_weights(final["model_state"], reference["last"]["model_state"], "final weights")
