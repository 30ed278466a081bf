"""``python -m cnnlab.engine.torchrun ARGS``: torchrun, as ``cnnlab train --nproc N`` starts it.

The same launcher (``torch.distributed.run``, same arguments), except for how it ends:

- **A stop signal** (SIGTERM, or Ctrl-C from the terminal): torchrun passes it on to the
  workers, which stop at one agreed step, save ``last.pt`` and say how to resume (rank 0).
  torchrun then raises ``SignalException``; here that is one line and the exit status a shell
  gives for the signal (128 + it: 143, 130), not a traceback.
- **A failed worker**: torchrun's own report (which rank, exit code, when) in one message, not
  behind a traceback; exit status 1.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(argv)
    except SignalException as stop:
        sys.stderr.write(f"cnnlab: torchrun stopped its workers on {stop.sigval.name}\n")
        return 128 + int(stop.sigval)
    except ChildFailedError as failed:
        sys.stderr.write(f"cnnlab: a torchrun worker failed:\n{failed}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
