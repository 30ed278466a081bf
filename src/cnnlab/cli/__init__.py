"""The command line: the only place that reads argv and prints.

Each feature area owns one module in this package with a ``register(subparsers)`` function that
adds its sub-commands and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and
returning an exit code). Heavy imports (torch, matplotlib) happen inside those functions, so
``cnnlab --help`` and the NumPy commands stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cnnlab import __version__
from cnnlab.errors import CnnlabError

# Optional dependencies -> the extra that installs them (pyproject.toml's optional-dependencies).
EXTRAS = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "multipart": "serve",
    "python_multipart": "serve",
    "onnx": "export",
    "onnxruntime": "export",
    "onnxscript": "export",
}

# Sub-command modules, in the order they appear in --help.
COMMAND_MODULES = (
    "cnnlab.cli.ops_cmds",
    "cnnlab.cli.data_cmds",
    "cnnlab.cli.model_cmds",
    "cnnlab.cli.train_cmds",
    "cnnlab.cli.viz_cmds",
    "cnnlab.cli.export_cmds",
    "cnnlab.cli.serve_cmds",
)


class _Parser(argparse.ArgumentParser):
    """argparse with our one-line error format and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        fail(message)


def fail(message: str) -> None:
    """Print ``cnnlab: error: message`` on stderr and exit with status 2."""
    sys.stderr.write(f"cnnlab: error: {message}\n")
    raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnlab",
        description="Convolutional neural networks, from convolution math to a served model.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module
                raise
            continue  # feature module not written yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CnnlabError as exc:
        fail(str(exc))
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        fail(f"cnnlab {args.command} needs {exc.name}: pip install 'cnnlab[{extra}]'")
    except FileNotFoundError as exc:
        fail(f"file not found: {exc.filename or exc}")
    except PermissionError as exc:
        fail(f"permission denied: {exc.filename or exc}")
    except IsADirectoryError as exc:
        fail(f"is a directory: {exc.filename or exc}")
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("cnnlab: interrupted\n")
        return 130
    return 0
