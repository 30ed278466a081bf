"""A pre-warmed launcher for `cnnlab` runs that the crash trials kill (a test helper, not a test).

Importing torch costs seconds per process, and the crash trials start twenty-odd training runs.
This script imports torch and cnnlab once, then reads one JSON job per line on stdin and forks a
child that runs ``cnnlab.cli.main(argv)`` (exactly what the ``cnnlab`` console script runs) in
the job's folder, with stdout/stderr in log files. It answers ``{"pid": N}`` when the child
starts and ``{"rc": R}`` when it ends (R < 0: killed by signal -R). The zygote itself never runs
a torch operation, so forking it is safe.

A job may carry a kill ``plan`` (see :func:`install_plan`): the child then SIGKILLs itself at a
chosen moment: inside the k-th training batch, at the start of the k-th evaluation, with the
k-th ``last``/``best`` checkpoint or ``best.safetensors`` temp file torn at a random byte, or
complete but not yet renamed. The effect of SIGKILL does not depend on who sends it; the
test also kills children from outside at random times.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_plan(plan: dict) -> None:
    """Patch the training code of this (child) process to die at the planned moment."""
    from cnnlab.engine import loop

    kind, at, frac = plan["kind"], int(plan["at"]), float(plan.get("frac", 0.5))
    calls = {"n": 0}

    def hit() -> bool:
        calls["n"] += 1
        return calls["n"] == at

    if kind == "batch":  # after the k-th optimiser step, before its bookkeeping is saved
        accumulate = loop._accumulate

        def _accumulate(*args):
            accumulate(*args)
            if hit():
                _die()

        loop._accumulate = _accumulate
    elif kind == "eval":
        evaluate = loop.evaluate

        def _evaluate(*args, **kw):
            if hit():
                _die()
            return evaluate(*args, **kw)

        loop.evaluate = _evaluate
    elif kind.startswith("write-") or kind == "rename":
        # Every atomic writer ends with os.replace(temp, target): there, cut the finished temp
        # file to `frac` of its bytes (a write torn by the kill) or keep it whole ("rename":
        # written and fsynced, never renamed), and die. Independent of how the bytes were made.
        targets = {
            "write-last": ("last.pt",),
            "write-best": ("best.pt",),
            "write-safetensors": ("best.safetensors",),
            "rename": ("last.pt", "best.pt"),
        }
        replace, target = os.replace, targets[kind]

        def _replace(src, dst, *args, **kw):
            if Path(dst).name in target and hit():
                if kind != "rename":
                    with open(src, "rb+") as f:
                        f.truncate(int(os.path.getsize(src) * frac))
                        os.fsync(f.fileno())
                _die()
            return replace(src, dst, *args, **kw)

        os.replace = _replace
    elif kind != "none":
        raise ValueError(f"unknown kill plan {kind!r}")


def _child(job: dict) -> None:
    from cnnlab.cli import main

    os.chdir(job["cwd"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the job pipe belongs to the zygote
    os.close(devnull)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        out = os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    install_plan(job.get("plan") or {"kind": "none", "at": 0})
    sys.argv = ["cnnlab", *job["argv"]]
    try:
        rc = main(job["argv"])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a traceback is a finding: show it in the log, exit 99
        import traceback

        traceback.print_exc()
        rc = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(rc or 0))


def serve() -> None:
    # The point of the zygote: pay for the imports once. --deterministic pulls in torch._dynamo
    # and the curves picture pulls in matplotlib, seconds each on a busy machine.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import torch._dynamo  # noqa: F401
    import torch._inductor  # noqa: F401

    import cnnlab.cli.train_cmds  # noqa: F401
    import cnnlab.data.digits  # noqa: F401
    import cnnlab.engine  # noqa: F401
    import cnnlab.viz.training  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(job)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"rc": rc}), flush=True)


if __name__ == "__main__":
    serve()
