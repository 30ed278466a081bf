"""``cnnlab serve``: the draw-a-digit page and the JSON API (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from cnnlab.errors import CnnlabError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model: drawing page at /, POST /predict, /docs",
        description=(
            "Load RUN once (run folder, .pt checkpoint, .onnx, or .safetensors with its manifest) "
            "and serve it with uvicorn. Needs the serve extra: pip install 'cnnlab[serve]'."
        ),
    )
    _server_flags(p)
    p.set_defaults(func=_serve, open_page=None)

    p = subparsers.add_parser(
        "explain",
        help="open the explainer page: every layer's feature maps, receptive fields, arithmetic",
        description=(
            "Serve RUN as `cnnlab serve` does and open http://HOST:PORT/explain in the browser: "
            "draw a digit and see every layer's output; click a unit for its receptive field and "
            "the arithmetic behind its value. Needs a PyTorch checkpoint and the serve extra."
        ),
    )
    _server_flags(p)
    p.add_argument("--no-browser", dest="open_page", action="store_const", const=None,
                   default="/explain", help="do not open a browser, only serve")  # fmt: skip
    p.set_defaults(func=_serve)


def _server_flags(p) -> None:
    p.add_argument("run", metavar="RUN", help="run folder, checkpoint, .onnx or .safetensors")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free)")
    p.add_argument("--max-upload-mb", type=float, default=5.0, metavar="MB",
                   help="largest image upload; bigger gets 413 (default 5)")  # fmt: skip
    p.add_argument("--max-pixels", type=int, default=20_000_000, metavar="N",
                   help="largest width x height decoded; more gets 400 (default 2e7)")  # fmt: skip
    p.add_argument("--max-concurrent", type=int, default=2, metavar="N",
                   help="images processed at once (default 2)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="torch threads per inference (default 1)")
    p.add_argument("--keep-alive", type=float, default=30.0, metavar="S",
                   help="seconds an idle connection stays open (default 30: longer than the 5-15 s "
                        "pools of httpx/aiohttp: no client reuses one being closed)")  # fmt: skip
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                   help="seconds for a request's headers to arrive, else the connection is "
                        "closed (default 10)")  # fmt: skip
    p.add_argument("--body-timeout", type=float, default=60.0, metavar="S",
                   help="seconds for a request's body to arrive after its headers "
                        "(default 60)")  # fmt: skip
    p.add_argument("--inference-timeout", type=float, default=10.0, metavar="S",
                   help="seconds an ONNX model may run for one request; longer is stopped at "
                        "its next node and answered 503 (default 10)")  # fmt: skip
    p.add_argument("--max-connections", type=int, default=0, metavar="N",
                   help="open connections at once; a new one evicts the longest-waiting idle "
                        "or stalled one (default: half the fd limit, at most 1000)")  # fmt: skip
    p.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"))  # fmt: skip


def _settings(args: argparse.Namespace):
    from cnnlab.serve.app import ServeSettings

    if not 0 < args.max_upload_mb <= 1024:
        raise CnnlabError(f"--max-upload-mb {args.max_upload_mb} must be in (0, 1024]")
    if args.max_pixels < 1:
        raise CnnlabError(f"--max-pixels {args.max_pixels} must be positive")
    if args.max_concurrent < 1 or args.threads < 1:
        raise CnnlabError(
            f"--max-concurrent {args.max_concurrent} and --threads {args.threads} must be >= 1"
        )
    if not 0 < args.keep_alive <= 3600:
        raise CnnlabError(f"--keep-alive {args.keep_alive} must be in (0, 3600] seconds")
    for flag, value in (("--header-timeout", args.header_timeout),
                        ("--body-timeout", args.body_timeout),
                        ("--inference-timeout", args.inference_timeout)):  # fmt: skip
        if not 0 < value <= 3600:  # also refuses nan
            raise CnnlabError(f"{flag} {value} must be in (0, 3600] seconds")
    if not 0 <= args.max_connections <= 1_000_000:
        raise CnnlabError(f"--max-connections {args.max_connections} must be in 0..1000000")
    if not 0 <= args.port <= 65535:
        raise CnnlabError(f"--port {args.port} is not a TCP port")
    return ServeSettings(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_concurrent=args.max_concurrent,
        torch_threads=args.threads,
        inference_timeout=args.inference_timeout,
    )


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        import uvicorn

        from cnnlab.serve.app import create_app
    except ModuleNotFoundError as exc:
        raise CnnlabError(f"serving needs {exc.name}: pip install 'cnnlab[serve]'") from None
    from cnnlab.run import load

    torch_threads(args.threads)
    run = load(args.run)
    run.set_threads(args.threads)  # ONNX Runtime has its own thread pool
    if args.open_page and not hasattr(run.model, "named_modules"):
        raise CnnlabError(f"{args.run}: the explainer needs a PyTorch checkpoint (.pt, run folder)")
    app = create_app(run, settings)
    from cnnlab.serve.guard import ConnectionLimits, guarded_protocol

    limits = ConnectionLimits(args.header_timeout, args.body_timeout, args.max_connections)
    _log_like_uvicorn("cnnlab.serve", args.log_level)
    if not _is_loopback(args.host):
        sys.stderr.write(
            f"cnnlab: warning: listening on {args.host}, reachable from other machines\n"
        )
    app.state.service.warm_up()
    info = app.state.service.info()
    print(
        f"serving {info.get('model') or 'model'} ({info.get('dataset') or '?'}) from {args.run} "
        f"on http://{args.host}:{args.port}  (page /, API /predict, docs /docs)",
        flush=True,
    )
    if args.open_page and args.port:
        _open_when_up(f"http://{_browser_host(args.host)}:{args.port}{args.open_page}")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_keep_alive=args.keep_alive,
        http=guarded_protocol(limits),  # deadlines for requests still arriving, connection cap
    )
    return 0


def _log_like_uvicorn(name: str, level: str) -> None:
    """One line per event on stderr, formatted as uvicorn's own (``WARNING:  ...``)."""
    import logging

    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:  %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())


def torch_threads(n: int) -> None:
    """One image is too small to split across cores; requests run side by side instead."""
    import torch

    torch.set_num_threads(n)


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _browser_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _open_when_up(url: str) -> None:
    """Open ``url`` in the user's browser once the server answers (a background thread)."""
    import threading
    import urllib.request
    import webbrowser

    def wait_then_open() -> None:
        for _ in range(100):
            try:
                with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/healthz", timeout=1):
                    break
            except OSError:
                threading.Event().wait(0.1)
        webbrowser.open(url)

    print(f"opening {url}", flush=True)
    threading.Thread(target=wait_then_open, daemon=True).start()
