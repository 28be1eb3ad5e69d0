"""Loopback servers that misbehave the way slow and dead endpoints do.

- ``DripServer``: reads the request, then answers one byte every ``interval``
  seconds (a valid answer, if one waits long enough): per-read timeouts never
  trip on it.
- ``DeadServer``: accepts connections, reads what comes, never answers.
- ``Redirector``: a tiny server whose routes answer (status, headers, body),
  for redirect chains and feeds.

All listen on 127.0.0.1 only and stop on ``__exit__``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Raw:
    """A listening socket whose connections are each handled by ``handle(conn)`` in a thread."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopped = threading.Event()
        self.accepted = 0
        self._conns: list[socket.socket] = []

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


class DripServer(_Raw):
    """Answers ``HTTP/1.1 200 OK`` … one byte every ``interval`` seconds."""

    ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Content-Length: 27\r\n\r\n{\"errcode\":0,\"errmsg\":\"ok\"}")

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval

    def handle(self, conn: socket.socket) -> None:
        _read_request(conn)
        for i in range(len(self.ANSWER)):
            if self.stopped.wait(self.interval):
                return
            conn.sendall(self.ANSWER[i:i + 1])


class DeadServer(_Raw):
    """Accepts and reads, never answers (until stopped)."""

    def handle(self, conn: socket.socket) -> None:
        _read_request(conn)
        self.stopped.wait()


class LoopbackServer:
    """A threading HTTP server on 127.0.0.1 (a free port) for ``handler``, as a context manager."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class Routes(LoopbackServer):
    """``routes[path] = fn(handler) -> (status, headers, body)``; every request in ``hits``."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable] = {}
        self.hits: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                outer.hits.append((self.path, dict(self.headers)))
                route = outer.routes.get(self.path.split("?", 1)[0])
                status, headers, body = route(self) if route else (404, {}, b"")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any

            def log_message(self, *args):
                pass

        self.serve(Handler)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """(what ``fn()`` returned or raised, seconds it took)."""
    start = time.monotonic()
    try:
        out: object = fn()
    except Exception as exc:  # the test looks at it
        out = exc
    return out, time.monotonic() - start
