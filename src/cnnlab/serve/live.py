"""Watch a model train: ``cnnlab train ... --live`` serves a page at http://127.0.0.1:PORT/train.

:class:`LiveTraining` is a fit() callback. At every evaluation it publishes the metrics row and,
for one fixed probe image (the first validation image), the output of every conv layer and the
first conv layer's kernels; every few batches it publishes the running training loss. A small
standard-library HTTP server (:class:`LiveServer`, loopback only, in a daemon thread) streams
these as server-sent events at ``/train/events``; the page redraws the curves and the maps, so
a student watches the filters form. Nothing here needs FastAPI.

>>> server = LiveServer(port=0).start()  # doctest: +SKIP
>>> fit(config, callbacks=[LiveTraining(server)])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import numpy as np

from cnnlab.engine.callbacks import Callback
from cnnlab.errors import CnnlabError
from cnnlab.serve.explain import encode_floats

BATCH_EVERY = 10  # publish the running training loss every this many batches
KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies and browsers from timing out
_STATIC = {
    "/train": ("train.html", "text/html; charset=utf-8"),
    "/static/train.js": ("train.js", "text/javascript; charset=utf-8"),
    "/static/explain.css": ("explain.css", "text/css; charset=utf-8"),
    "/static/shared.js": ("shared.js", "text/javascript; charset=utf-8"),
}


class LiveServer:
    """Server-sent events to every open ``/train`` page; late pages get the history replayed."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8001) -> None:
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._history: list[str] = []
        self._listeners: list[queue.Queue] = []
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> LiveServer:
        if not 0 <= self.port <= 65535:
            raise CnnlabError(f"--live {self.port} is not a TCP port (0-65535)")
        try:
            self._httpd = ThreadingHTTPServer((self.host, self.port), _handler(self))
        except OSError as exc:
            raise CnnlabError(f"--live: cannot listen on {self.host}:{self.port}: {exc}") from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/train"

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Send one event to every listener and keep it for pages that connect later."""
        message = f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        with self._lock:
            if kind == "step":  # only the latest running loss is worth replaying
                self._history = [m for m in self._history if not m.startswith("event: step")]
            self._history.append(message)
            for q in self._listeners:
                q.put(message)

    def close(self) -> None:
        if self._httpd is not None:
            with self._lock:
                for q in self._listeners:
                    q.put(None)
            self._httpd.shutdown()
            self._httpd.server_close()

    def _subscribe(self) -> tuple[queue.Queue, list[str]]:
        q: queue.Queue = queue.Queue()
        with self._lock:
            self._listeners.append(q)
            return q, list(self._history)

    def _unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._listeners:
                self._listeners.remove(q)


def _handler(server: LiveServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # the training progress owns the terminal
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/train/"):
                self.send_response(302)
                self.send_header("Location", "/train")
                self.end_headers()
            elif path in _STATIC:
                name, kind = _STATIC[path]
                body = (resources.files("cnnlab.serve") / "static" / name).read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Security-Policy", "default-src 'self'")
                self.end_headers()
                self.wfile.write(body)
            elif path == "/train/events":
                self._events()
            else:
                self.send_error(404, "not found: the live page is /train")

        def _events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            q, history = server._subscribe()
            try:
                for message in history:
                    self.wfile.write(message.encode())
                self.wfile.flush()
                while True:
                    try:
                        message = q.get(timeout=KEEPALIVE_S)
                    except queue.Empty:
                        message = ": keep-alive\n\n"
                    if message is None:
                        break
                    self.wfile.write(message.encode())
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                server._unsubscribe(q)

    return Handler


class LiveTraining(Callback):
    """Publish metrics and a probe image's feature maps to a :class:`LiveServer`."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.probe = None  # (1, C, H, W) normalised tensor
        self.layers: list[tuple[str, Any]] = []

    def on_train_begin(self, state) -> None:
        from cnnlab.viz.features import feature_layers

        if not state.dist.is_main:
            return
        data = state.data
        source = data.val if data.val is not None and len(data.val.labels) else data.train
        self.probe = data.normalizer(source.images[:1]).float()
        self.layers = [
            (n, m) for n, m in feature_layers(state.raw_model) if "Conv" in type(m).__name__
        ]
        image = source.images[0].float().numpy() / 255.0
        self.server.publish(
            "start",
            {
                "model": state.config.model,
                "dataset": state.config.dataset,
                "classes": list(data.classes),
                "total_steps": state.total_steps,
                "steps_per_epoch": state.steps_per_epoch,
                "probe": {"shape": list(image.shape), "data": encode_floats(image)},
                "probe_label": data.classes[int(source.labels[0])],
                "layers": [n for n, _ in self.layers],
                "history": list(state.history),
            },
        )
        self._publish_maps(state, {"step": state.step})

    def on_batch_end(self, state, logs: dict[str, Any]) -> None:
        if state.dist.is_main and state.step % BATCH_EVERY == 0:
            self.server.publish("step", {"step": state.step, "loss": float(logs["loss"])})

    def on_evaluate(self, state, metrics: dict[str, Any]) -> None:
        if state.dist.is_main:
            self._publish_maps(state, _plain(metrics))

    def on_train_end(self, state) -> None:
        if state.dist.is_main:
            self.server.publish("end", {"step": state.step, "run_dir": str(state.run_dir)})

    def _publish_maps(self, state, row: dict[str, Any]) -> None:
        import torch

        from cnnlab.viz.features import capture

        model = state.raw_model
        param = next(model.parameters())
        was_training = model.training
        model.eval()
        try:
            logits, outputs = capture(model, self.probe.to(param.device), self.layers)
        finally:
            model.train(was_training)
        probs = torch.softmax(logits.float()[0], -1).cpu().numpy()
        maps = []
        for name, _ in self.layers:
            out = outputs[name][0].float().cpu().numpy()
            maps.append({"name": name, "shape": list(out.shape), "data": encode_floats(out)})
        first = self.layers[0][1].weight.detach().float().cpu().numpy() if self.layers else None
        kernels = (
            None if first is None else {"shape": list(first.shape), "data": encode_floats(first)}
        )
        self.server.publish(
            "eval", {"row": row, "maps": maps, "kernels": kernels, "probs": probs.tolist()}
        )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in row.items()
    }
