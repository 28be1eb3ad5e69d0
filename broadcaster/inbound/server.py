"""The inbound HTTP server: Starlette routes on uvicorn.

``POST /inbound/<platform>`` (and ``GET /inbound/wecom``) for every platform
with credentials in ``inbound:``; ``GET /healthz`` answers ``ok``; ``GET
/dashboard`` shows the office's figures to a request carrying
``defaults.dashboard_token`` as a Bearer token (404 without a token set). For
each inbound request, in this order:

1. the body is read up to 64 KiB (larger: 413, stopped while reading);
2. the platform module verifies and parses it (not verified: 401, nothing stored);
3. each message or join is mapped to its group by ``chats:`` (a chat no group
   claims is logged as ``inbound unknown`` and ignored);
4. it is appended to the journal and fsynced, once per platform message id
   (a retry is answered without being stored again);
5. the platform gets its answer (well within a second), and the worker does
   the rest in the background (matching, tickets, replies).

``Service`` holds the parts (journal, worker, reply sender) for the server's
lifetime; ``run`` serves in the foreground (``serve``), ``ServerThread`` in a
thread (``daemon --serve``, tests, benchmarks).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from broadcaster.inbound import platforms
from broadcaster.inbound.crypto import Refused
from broadcaster.inbound.journal import Journal, JournalError
from broadcaster.inbound.message import InboundJoin, InboundMessage
from broadcaster.inbound.platforms import RawRequest

if TYPE_CHECKING:
    from broadcaster.app import App

log = logging.getLogger("broadcaster.inbound")

MAX_BODY = 64 * 1024


class TooLarge(Exception):
    pass


class Service:
    """The journal, the worker and the reply sender of one running server."""

    def __init__(self, app: App, *, send_replies: bool = True):
        from broadcaster.inbound.replies import ReplySender  # start-up time: loaded when first used
        from broadcaster.inbound.worker import Worker  # start-up time: loaded when first used

        self.app = app
        _ = app.groups   # load (and fail) before listening
        self.stop = threading.Event()
        self.journal = Journal(app.store, app.tz)
        self.replies = ReplySender(app, self.stop)
        self.worker = Worker(app, self.journal, self.replies, self.stop)
        self.send_replies = send_replies
        self.received = 0

    def start(self) -> None:
        from broadcaster.inbound import journal as journal_mod  # start-up time: loaded when first used
        from broadcaster.timeparse import parse_duration  # start-up time: loaded when first used

        retention = parse_duration(self.app.groups.defaults.retention, option="defaults.retention")
        journal_mod.purge(self.app.store, self.app.now().date(), retention)
        backlog = self.journal.start()
        answered = self.replies.adopt_pending() if self.send_replies else {}
        self.worker.start(backlog, answered)
        if self.send_replies:
            self.replies.start()
        log.info("inbound: endpoints for %s", ", ".join(self.app.groups.inbound.platforms()) or "none")

    def close(self) -> None:
        self.stop.set()
        self.worker.join()
        self.replies.join()
        self.journal.stop()

    # -- one request ---------------------------------------------------------------
    def accept(self, platform: str, raw: RawRequest) -> Response:
        """Verify, parse, store; the response the platform gets. Runs in a worker thread."""
        cfg = getattr(self.app.groups.inbound, platform, None)
        if cfg is None:
            return PlainTextResponse("not found", 404)
        module = platforms.module(platform)
        if raw.method not in module.methods:
            return PlainTextResponse("method not allowed", 405)
        try:
            parsed = module.parse(raw, cfg, self.app.now())
        except Refused as exc:
            log.warning("inbound %s refused (%d): %s", platform, exc.status, exc.reason)
            return PlainTextResponse("not verified" if exc.status == 401 else exc.reason, exc.status)
        try:
            for event in parsed.events:
                self._store(event)
        except JournalError:
            return PlainTextResponse("cannot store the message now", 503)
        if isinstance(parsed.answer, str):
            return Response(parsed.answer, media_type=parsed.content_type or "text/plain")
        if parsed.answer is not None:
            return JSONResponse(parsed.answer)
        return JSONResponse({"ok": True})

    def _store(self, event: InboundMessage | InboundJoin) -> None:
        group = self.app.groups.by_chat.get(event.chat)
        if group is None:
            log.info("inbound unknown %s (no group claims this chat)", event.chat)
            return
        event = replace(event, group_id=group.id)
        now = self.app.now()
        record = event.as_json(now) if isinstance(event, InboundJoin) else event.as_json()
        if self.journal.append(record, dedup=True):
            self.received += 1
            self.worker.submit(event)


def create_app(service: Service) -> Starlette:
    from anyio import to_thread  # start-up time: loaded when first used

    async def inbound(request: Request) -> Response:
        platform = request.path_params["platform"]
        if platform not in platforms.MODULES:
            return PlainTextResponse("not found", 404)
        try:
            body = await _read_body(request)
        except TooLarge:
            return PlainTextResponse(f"body larger than {MAX_BODY // 1024} KiB", 413)
        except ClientDisconnect:
            return PlainTextResponse("client went away", 400)
        raw = RawRequest(request.method, {k.lower(): v for k, v in request.headers.items()},
                         dict(request.query_params), body)
        return await to_thread.run_sync(service.accept, platform, raw)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def dashboard(request: Request) -> Response:
        from starlette.responses import HTMLResponse  # start-up time: loaded when first used

        from broadcaster.stats.dashboard import authorized, render_dashboard  # start-up time: loaded when first used

        allowed = authorized(service.app, request.headers.get("authorization"))
        if allowed is None:
            return PlainTextResponse("not found", 404)
        if not allowed:
            return PlainTextResponse("unauthorized", 401, headers={"WWW-Authenticate": "Bearer"})
        return HTMLResponse(await to_thread.run_sync(render_dashboard, service.app))

    @asynccontextmanager
    async def lifespan(_app):
        await to_thread.run_sync(service.start)
        try:
            yield
        finally:
            await to_thread.run_sync(service.close)

    routes = [Route("/healthz", healthz, methods=["GET"]),
              Route("/dashboard", dashboard, methods=["GET"]),
              Route("/inbound/{platform}", inbound, methods=["GET", "POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


async def _read_body(request: Request) -> bytes:
    """The body, refused as soon as it passes ``MAX_BODY`` (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def uvicorn_config(asgi, *, host: str, port: int, log_level: str = "warning"):
    import uvicorn  # start-up time: loaded when first used

    return uvicorn.Config(asgi, host=host, port=port, log_level=log_level, access_log=False,
                          lifespan="on", timeout_keep_alive=30, server_header=False,
                          limit_concurrency=1000, timeout_graceful_shutdown=10)


def run(app: App, *, host: str, port: int) -> None:
    """Serve in the foreground until SIGTERM/SIGINT (uvicorn handles the signals)."""
    import uvicorn  # start-up time: loaded when first used

    service = Service(app)
    server = uvicorn.Server(uvicorn_config(create_app(service), host=host, port=port))
    server.run()
    if not server.started:
        from broadcaster.errors import InputError  # start-up time: loaded when first used

        raise InputError(f"cannot listen on {host}:{port} (in use, or not allowed)")


class ServerThread:
    """The server in a background thread, on a socket bound before it starts (port 0 works)."""

    def __init__(self, app: App, *, host: str = "127.0.0.1", port: int = 0, send_replies: bool = True):
        import uvicorn  # start-up time: loaded when first used

        self.service = Service(app, send_replies=send_replies)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            from broadcaster.errors import InputError

            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn_config(create_app(self.service), host=host,
                                                    port=self.port))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="inbound-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the inbound server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=20)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
