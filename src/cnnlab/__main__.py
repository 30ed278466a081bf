"""``python -m cnnlab`` (also what torchrun launches with ``-m cnnlab``)."""

from cnnlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
