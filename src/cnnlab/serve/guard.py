"""Connection guard for ``cnnlab serve``: deadlines for requests still arriving, a connection cap.

uvicorn closes idle keep-alive connections, but not one that is silent from the start, nor one
sending its headers or body a byte at a time: thousands of those fill the server's file
descriptors. :func:`guarded_protocol` returns uvicorn's HTTP/1.1 protocol (h11) with

- a **header deadline**: a request's headers must arrive within ``header_timeout`` seconds of
  the connection opening (or of its first byte on a kept-alive connection);
- a **body deadline**: its body within ``body_timeout`` seconds of the headers;
- a **connection cap**: at ``max_connections`` open connections, a new one evicts the
  connection that has waited longest for a request to arrive (so ``/healthz`` keeps answering
  under such abuse); only when every connection is busy being answered is the new one
  refused with a 503.

Each aborted connection is logged as one line on the ``cnnlab.serve`` logger.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("cnnlab.serve")
# Scope key telling the app that the guard, not the client, ended the request (already logged).
ABORTED = "cnnlab.aborted"
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # seconds for a request's headers to arrive
    body_timeout: float = 60.0  # seconds for its body, once the headers are in
    max_connections: int = 0  # open connections at once; 0: derived from the descriptor limit


def default_max_connections() -> int:
    """Half the process's file-descriptor limit (the rest: the app, threads, logs), at most 1000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1000
    return max(8, min(1000, (soft - 64) // 2))


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with the deadlines and the cap of ``limits``."""
    cap = limits.max_connections or default_max_connections()

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _waiting_since = 0.0
        _phase = ""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > cap and not self._evict_one():
                log.warning("%s: refused a connection: %d connections are busy", self._who(), cap)
                transport.write(BUSY)
                transport.close()
                return
            self._arm("headers", limits.header_timeout)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._track()

        def _track(self) -> None:
            """Arm or drop the deadline for the request now arriving (if any)."""
            if self.transport.is_closing():
                return
            state = self.conn.their_state
            if state is h11.IDLE:  # part of the next request's headers: its clock starts now
                if self._deadline is None and self.conn.trailing_data[0]:
                    self._arm("headers", limits.header_timeout)
            elif state is h11.SEND_BODY:
                if self._phase != "body":
                    self._arm("body", limits.body_timeout)
            else:  # the whole request is in (or the connection is ending)
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, phase: str, seconds: float) -> None:
            self._disarm()
            self._phase, self._waiting_since = phase, self.loop.time()
            self._deadline = self.loop.call_later(seconds, self._expired, seconds)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._phase = None, ""

        def _expired(self, seconds: float) -> None:
            what = self._phase
            self._deadline = None
            self._abort(f"request {what} did not arrive within {seconds:g} s")

        def _abort(self, reason: str) -> None:
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self.scope[ABORTED] = True  # the app's handler need not log it again
            log.warning("%s: closed the connection: %s", self._who(), reason)
            self._disarm()
            self.transport.close()

        def _evictable(self) -> bool:
            """Waiting for a request to arrive (not being answered), and still open."""
            waiting = self._deadline is not None or self.timeout_keep_alive_task is not None
            return waiting and not self.transport.is_closing()

        def _evict_one(self) -> bool:
            others = [c for c in self.connections if c is not self]
            waiting = [c for c in others if getattr(c, "_evictable", lambda: False)()]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda c: c._waiting_since)
            oldest._abort(f"evicted for a new connection ({cap} connections open)")
            return True

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._waiting_since = self.loop.time()  # idle keep-alive: evictable from now
            self._track()  # a pipelined request already buffered is timed like any other

        def _who(self) -> str:
            return f"{self.client[0]}:{self.client[1]}" if self.client else "client"

    return GuardedH11Protocol
