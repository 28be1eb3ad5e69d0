"""Answers to residents: queued as one-group announcements, sent by ``serve`` within seconds.

Replies are announcements (durable, logged, rate-limited, crash-safe like any
other) with ``reply: true`` and ``urgent: true`` (quiet hours do not hold
them). The answers the worker finds together are queued together, one
announcement for up to ``BATCH`` groups (one delivery row and one body each):
every durable write then serves many answers, which is what lets ``serve``
keep up with hundreds of questions a second. ``reply_routes`` maps a group to
the platform's reply path its message carried:

- ``dingtalk_session``: POST a robot message to DingTalk's ``sessionWebhook``;
- ``wecom_response``: POST to the WeCom robot's ``response_url`` (once);
- ``feishu_reply``: the Feishu/Lark reply API with a ``tenant_access_token``
  (fetched from ``app_id``/``app_secret``, refreshed before it expires).

A route is used only while valid and only on the platform's own https host or
loopback (a URL from a verified request still cannot point us elsewhere);
otherwise the group's own channel carries the answer.

``ReplySender`` is ``serve``'s dispatcher: a thread that sends the replies
this process queued, under the replies lock (see ``broadcaster.delivery.dispatch``),
and the other announcements a message led to (a work order's acknowledgement
and notices) under the dispatch lock when no daemon or ``run-once`` holds it
(when one does, that one sends them within a second).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broadcaster.net.urls import UrlRefused, check_webhook_url
from broadcaster.queue.outbox import Message, enqueue

log = logging.getLogger(__name__)

REPLY_EXPIRY = timedelta(hours=1)     # an answer later than this helps nobody
PLATFORM_HOSTS = {
    "dingtalk_session": ("oapi.dingtalk.com", "api.dingtalk.com"),
    "wecom_response": ("qyapi.weixin.qq.com",),
}
TOKEN_MARGIN = 300.0   # refresh a tenant_access_token this many seconds before it expires


def reply_url_allowed(kind: str, url: str, extra_hosts: tuple[str, ...] = ()) -> bool:
    """The platform's own https host, or loopback; parsed as the HTTP client parses it
    (``broadcaster.net.urls``): no credentials, no backslashes."""
    try:
        checked = check_webhook_url(url)
    except UrlRefused:
        return False
    return checked.loopback or checked.host in (*PLATFORM_HOSTS.get(kind, ()), *extra_hosts)


BATCH = 200


@dataclass(frozen=True)
class Answer:
    group_id: str
    markdown: str
    route: dict | None
    key: str            # the message answered


def queue_replies(app, answers: list[Answer]) -> list[tuple[str, list[Answer]]]:
    """Queue answers (durable when this returns): ``[(announcement id, its answers)]``.

    A group answered twice in one batch gets its second answer in the next announcement,
    so each announcement has at most one delivery per group, in order.
    """
    out = []
    pending = list(answers)
    while pending:
        batch: list[Answer] = []
        seen: set[str] = set()
        rest: list[Answer] = []
        for a in pending:
            if a.group_id in seen or len(batch) >= BATCH:
                rest.append(a)
            else:
                seen.add(a.group_id)
                batch.append(a)
        extra: dict[str, Any] = {"reply_routes": {a.group_id: a.route for a in batch if a.route},
                                 "reply_to": {a.group_id: a.key for a in batch}}
        source = f"reply:{batch[0].key}" + (f"+{len(batch) - 1}" if len(batch) > 1 else "")
        ann_id = enqueue(app, [Message(a.group_id, a.markdown) for a in batch], source=source,
                         urgent=True, expires=REPLY_EXPIRY, reply=True, extra=extra)
        out.append((ann_id, batch))
        pending = rest
    return out


# -- reply-route channels -----------------------------------------------------------------


class ReplyRoutes:
    """Builds the channel for a reply route; holds Feishu tenant tokens between passes."""

    def __init__(self, app):
        self.app = app
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def channel(self, route: dict, group, session):
        """The channel for ``route``, or None (expired, not allowed, not configured)."""
        kind = route.get("kind")
        expires = route.get("expires_at")
        if expires and datetime.fromisoformat(expires) <= self.app.now():
            return None
        if kind in ("dingtalk_session", "wecom_response"):
            url = route.get("url") or ""
            if not reply_url_allowed(kind, url):
                log.warning("reply route for %s refused: not the platform's host", group.id)
                return None
            from broadcaster.inbound import reply_channels  # start-up time: loaded when first used

            cls = reply_channels.DingTalkSession if kind == "dingtalk_session" \
                else reply_channels.WeComResponse
            return cls.for_route(url, group, session)
        if kind == "feishu_reply":
            cfg = self.app.groups.inbound.feishu
            if cfg is None or not (cfg.app_id and cfg.app_secret) or not route.get("message_id"):
                return None
            from broadcaster.inbound import reply_channels  # start-up time: loaded when first used

            return reply_channels.FeishuReply.for_route(route["message_id"], cfg, group, session,
                                                        token=lambda: self.tenant_token(cfg, session))
        return None

    def tenant_token(self, cfg, session) -> str:
        """A valid ``tenant_access_token`` (fetched once, refreshed before expiry)."""
        key = (cfg.api_base, cfg.app_id or "")
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] - TOKEN_MARGIN > time.time():
                return cached[0]
            from broadcaster.net.client import CONNECT_TIMEOUT, READ_TIMEOUT  # start-up time: loaded when first used

            resp = session.post(f"{cfg.api_base}/open-apis/auth/v3/tenant_access_token/internal",
                                json={"app_id": cfg.app_id, "app_secret": cfg.app_secret},
                                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            try:
                data = resp.json()
            except ValueError:
                data = {}
            if not isinstance(data, dict) or data.get("code") != 0 or not data.get("tenant_access_token"):
                raise TokenError(f"tenant_access_token: HTTP {resp.status_code} "
                                 f"code {data.get('code') if isinstance(data, dict) else None}")
            token = str(data["tenant_access_token"])
            self.app.redactor.add([token])
            self._tokens[key] = (token, time.time() + float(data.get("expire", 7200)))
            return token


class TokenError(Exception):
    """The Feishu tenant token could not be had (the reply is retried)."""


# -- serve's dispatcher ------------------------------------------------------------------


class ReplySender:
    """Sends the replies this process queued, at once, under the replies lock."""

    def __init__(self, app, stop: threading.Event, *, workers: int = 16):
        self.app = app
        self.stop = stop
        self.workers = workers
        self.routes = ReplyRoutes(app)
        self._ids: set[str] = set()
        self._others: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def adopt_pending(self) -> dict[str, str]:
        """Replies left in the queue by an earlier run (a crash, a restart): sent from now on.

        Returns message key -> announcement id of the answers they carry, so that a
        message whose answer was queued just before the crash is not answered twice.
        """
        from broadcaster.queue import outbox  # start-up time: loaded when first used

        answered: dict[str, str] = {}
        for ann in outbox.active(self.app):
            if ann.meta.reply:
                self.add(ann.id)
                answered.update((key, ann.id) for key in (ann.meta.extra.get("reply_to") or {}).values())
        return answered

    def add(self, ann_id: str) -> None:
        with self._lock:
            self._ids.add(ann_id)
        self._wake.set()

    def add_other(self, ann_id: str) -> None:
        """An announcement that is not a reply (a ticket's acknowledgement): sent if nobody else does."""
        with self._lock:
            self._others.add(ann_id)
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="replies", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 10.0) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        wait = 1.0
        while not self.stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            if self.stop.is_set():
                return
            try:
                wait = self.run_pass()
            except Exception:   # keep answering: one bad pass must not stop the sender
                log.exception("reply pass failed")
                wait = 2.0

    def run_pass(self) -> float:
        """One pass over this process's replies; returns how long to wait before the next."""
        from filelock import FileLock, Timeout  # start-up time: loaded when first used

        from broadcaster.delivery.dispatch import REPLIES_LOCK, Dispatcher  # start-up time: loaded when first used

        self._send_others()
        with self._lock:
            ids = set(self._ids)
        if not ids:
            return 1.0
        lock = FileLock(self.app.store.locks_dir / REPLIES_LOCK, mode=0o600)
        try:
            lock.acquire(timeout=5)
        except Timeout:
            return 0.5
        try:
            dispatcher = Dispatcher(self.app, workers=self.workers, stop=self.stop, only=ids,
                                    routes=self.routes)
            result = dispatcher.run()
        finally:
            lock.release()
        self.sent += result.sent
        open_ids = dispatcher.open_ids()
        with self._lock:
            self._ids -= ids - open_ids
        for err in result.errors:
            log.error("%s", err)
        if result.next_due is None:
            return 1.0
        return min(1.0, max(0.05, (result.next_due - self.app.now()).total_seconds()))

    def _send_others(self) -> None:
        from broadcaster.delivery.dispatch import Dispatcher  # start-up time: loaded when first used
        from broadcaster.errors import LockHeld  # start-up time: loaded when first used

        with self._lock:
            ids, self._others = self._others, set()
        if not ids:
            return
        try:
            with self.app.store.dispatch_lock(wait=0):
                Dispatcher(self.app, workers=self.workers, stop=self.stop, only=ids).run()
        except LockHeld:
            pass   # a daemon or run-once is dispatching: it sends them
