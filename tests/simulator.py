"""A loopback HTTP server that behaves like every chat platform broadcaster talks to.

It answers the real routes with the real answers, errors included:

==========  =================================================  ======================
platform    route                                              robot key
==========  =================================================  ======================
wecom       POST /cgi-bin/webhook/send?key=K                   K
dingtalk    POST /robot/send?access_token=T[&timestamp&sign]   T
feishu      POST /open-apis/bot/v2/hook/T                      T
telegram    POST /bot<TOKEN>/sendMessage                       TOKEN
slack       POST /services/T…/B…/X…                            "T…/B…/X…"
discord     POST /api/webhooks/<id>/<token>[?wait=true]        "<id>/<token>"
webhook     POST /hook/<name>  (checks X-Broadcaster-Signature)  name
==========  =================================================  ======================

It validates bodies as the platforms do (message types, required fields,
byte/character limits with each platform's error, DingTalk/Feishu signatures
and timestamp freshness, DingTalk/Feishu keywords, Telegram HTML entities),
enforces per-robot rate limits with each platform's own answer, and records
every accepted message. Robots can be told to fail their next requests::

    with PlatformSimulator() as sim:
        robot = sim.add_robot("dingtalk", secret="SECxyz", keywords=["通知"])
        robot.config()               # {"type": "dingtalk", "url": ..., "secret": ...}
        robot.fail_next("reset")     # or "5xx", "slow", "rate_limit"; count=N
        robot.answer_next(200, {"errcode": -1, "errmsg": "system busy"})  # any answer, once
        ...                          # send through broadcaster's channel
        robot.texts                  # what was accepted, in order

Failure modes: ``5xx`` answers 502 with an HTML body; ``reset`` reads the
request and closes the socket without answering (RST); ``slow`` waits
``slow_seconds`` (beyond a short client read timeout) and then handles the
request normally, so the message *is* delivered, as on a real slow platform;
``rate_limit`` answers the platform's rate-limit error.

Standalone, for benchmarks (unknown keys are registered on first use unless
``--strict``)::

    python -m tests.simulator --port 8099 --latency-ms 50
    GET  /_sim/stats                 {"robots": {"wecom:K": n, ...}, "total": n}
    POST /_sim/robots  {"platform": "dingtalk", "key": "T", "secret": "S", ...}
    POST /_sim/fail    {"platform": "wecom", "key": "K", "mode": "5xx", "count": 3}
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PLATFORMS = ("wecom", "dingtalk", "feishu", "telegram", "slack", "discord", "webhook",
             "feishu_app")
FAILURE_MODES = ("5xx", "reset", "slow", "rate_limit")

# (count, per_seconds) a robot may accept; Telegram's per-bot limit is PER_BOT below.
DEFAULT_LIMITS: dict[str, list[tuple[int, float]]] = {
    "wecom": [(20, 60.0)],
    "dingtalk": [(20, 60.0)],
    "feishu": [(5, 1.0), (100, 60.0)],
    "telegram": [(20, 60.0)],  # per chat
    "slack": [(1, 1.0)],
    "discord": [(5, 2.0)],
    "webhook": [],
    "feishu_app": [(5, 1.0)],   # the reply API: 5 QPS per group
}
TELEGRAM_PER_BOT = (30, 1.0)
DINGTALK_PENALTY = 600.0  # exceeding the limit throttles a DingTalk robot for 10 minutes

WECOM_LIMITS = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}
BODY_LIMIT = {"dingtalk": 20_000, "feishu": 20 * 1024}
TELEGRAM_CHARS = 4096
DISCORD_CHARS = 2000
SLACK_CHARS = 40_000


@dataclass
class Received:
    """One accepted message."""

    platform: str
    key: str
    payload: Any
    text: str               # the message text as sent (content / text / lark_md …)
    headers: dict[str, str]
    query: dict[str, str]
    chat_id: str | None = None
    at: float = field(default_factory=time.time)


class Robot:
    """One registered robot (webhook key, bot token…) and what it received."""

    def __init__(self, sim: PlatformSimulator, platform: str, key: str, *,
                 secret: str | None = None, keywords: tuple[str, ...] | list[str] = (),
                 limits: list[tuple[int, float]] | None = None, latency: float | None = None,
                 chats: set[str] | None = None, kicked: set[str] | None = None,
                 penalty_seconds: float | None = None):
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}")
        self.sim = sim
        self.platform = platform
        self.key = key
        self.secret = secret
        self.keywords = tuple(keywords)
        self.limits = list(DEFAULT_LIMITS[platform] if limits is None else limits)
        self.latency = latency
        self.chats = {str(c) for c in chats} if chats is not None else None
        self.kicked = {str(c) for c in (kicked or ())}
        default_penalty = DINGTALK_PENALTY if platform == "dingtalk" else 0.0
        self.penalty_seconds = default_penalty if penalty_seconds is None else penalty_seconds
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._failures: deque[str | Answer] = deque()
        self._windows: dict[tuple[str, float], deque[float]] = {}
        self._throttled_until = 0.0
        self._attempts = 0

    # -- what tests use --------------------------------------------------------
    def fail_next(self, mode: str, count: int = 1) -> Robot:
        """Make the next ``count`` requests to this robot fail with ``mode``."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r} (known: {FAILURE_MODES})")
        with self._lock:
            self._failures.extend([mode] * count)
        return self

    def answer_next(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Robot:
        """Answer the next request with ``body`` (JSON, or plain text when a str), unread."""
        answer = (_plain if isinstance(body, str) else _json)(status, body, **(headers or {}))
        with self._lock:
            self._failures.append(answer)
        return self

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]

    @property
    def attempts(self) -> int:
        """Requests that reached this robot (accepted or not)."""
        with self._lock:
            return self._attempts

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._failures.clear()
            self._windows.clear()
            self._throttled_until = 0.0
            self._attempts = 0

    @property
    def url(self) -> str:
        base, key = self.sim.base_url, self.key
        return {
            "wecom": f"{base}/cgi-bin/webhook/send?key={key}",
            "dingtalk": f"{base}/robot/send?access_token={key}",
            "feishu": f"{base}/open-apis/bot/v2/hook/{key}",
            "telegram": f"{base}/bot{key}/sendMessage",
            "slack": f"{base}/services/{key}",
            "discord": f"{base}/api/webhooks/{key}",
            "webhook": f"{base}/hook/{key}",
            "feishu_app": base,
        }[self.platform]

    def config(self, **overrides: Any) -> dict[str, Any]:
        """A broadcaster channel config (groups.yaml ``channel:``) that posts to this robot."""
        if self.platform == "telegram":
            chat = sorted(self.chats)[0] if self.chats else "-1001234567890"
            cfg: dict[str, Any] = {"type": "telegram", "token": self.key, "chat_id": chat,
                                   "api_base": self.sim.base_url}
        else:
            cfg = {"type": self.platform, "url": self.url}
            if self.secret and self.platform in ("dingtalk", "feishu", "webhook"):
                cfg["secret"] = self.secret
            if self.keywords and self.platform == "dingtalk":
                cfg["keyword"] = self.keywords[0]
        cfg.update(overrides)
        return cfg

    # -- what the handler uses -------------------------------------------------
    def _begin(self) -> str | Answer | None:
        """Count the attempt; the failure (or canned answer) to inject for it, if any."""
        with self._lock:
            self._attempts += 1
            return self._failures.popleft() if self._failures else None

    def _admit(self, scope: str = "", extra: list[tuple[int, float]] = ()) -> float | None:
        """Take one slot in every window, or return seconds until one frees up."""
        if not self.sim.enforce_rate_limits:
            return None
        now = time.monotonic()
        limits = [(scope, c, p) for c, p in self.limits] + [("", c, p) for c, p in extra]
        with self._lock:
            if now < self._throttled_until:
                return self._throttled_until - now
            wait = 0.0
            for name, count, per in limits:
                window = self._windows.setdefault((name, per), deque())
                while window and window[0] <= now - per:
                    window.popleft()
                if len(window) >= count:
                    wait = max(wait, window[0] + per - now)
            if wait > 0:
                if self.penalty_seconds:
                    self._throttled_until = now + self.penalty_seconds
                    wait = self.penalty_seconds
                return wait
            for name, _count, per in limits:
                self._windows[(name, per)].append(now)
            return None

    def _record(self, message: Received) -> None:
        with self._lock:
            self._messages.append(message)


class PlatformSimulator:
    """The server. Use as a context manager; register robots with ``add_robot``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 latency: float | tuple[float, float] = 0.0,
                 slow_seconds: float = 2.0, enforce_rate_limits: bool = True,
                 auto_register: bool = False):
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.enforce_rate_limits = enforce_rate_limits
        self.auto_register = auto_register
        self._robots: dict[tuple[str, str], Robot] = {}
        self._tokens: dict[str, str] = {}   # Feishu tenant tokens -> app_id
        self.gets: list[str] = []           # paths of GET requests (pollers), in order
        self._lock = threading.Lock()
        self._server = _Server((host, port), _Handler)
        self._server.sim = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PlatformSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PlatformSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- robots ------------------------------------------------------------------
    def add_robot(self, platform: str, key: str | None = None, **options: Any) -> Robot:
        """Register a robot; ``key`` is generated in the platform's shape when omitted.

        Options: ``secret``, ``keywords``, ``limits`` [(count, per_seconds)],
        ``latency`` (seconds), ``chats``/``kicked`` (Telegram chat ids),
        ``penalty_seconds`` (DingTalk throttling after a burst).
        """
        robot = Robot(self, platform, key or _new_key(platform), **options)
        with self._lock:
            self._robots[(platform, robot.key)] = robot
        return robot

    def _new_token(self, app_id: str) -> str:
        token = "t-" + secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = app_id
        return token

    def _token_owner(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    def robot(self, platform: str, key: str) -> Robot:
        with self._lock:
            return self._robots[(platform, key)]

    def _lookup(self, platform: str, key: str) -> Robot | None:
        with self._lock:
            robot = self._robots.get((platform, key))
            if robot is None and self.auto_register and key:
                robot = self._robots[(platform, key)] = Robot(self, platform, key)
            return robot

    @property
    def robots(self) -> list[Robot]:
        with self._lock:
            return list(self._robots.values())

    def received(self, platform: str | None = None) -> list[Received]:
        """Every accepted message (of one platform), across robots, in arrival order."""
        out = [m for r in self.robots if platform in (None, r.platform) for m in r.messages]
        return sorted(out, key=lambda m: m.at)

    def stats(self) -> dict[str, Any]:
        counts = {f"{r.platform}:{r.key}": len(r.messages) for r in self.robots}
        return {"robots": counts, "total": sum(counts.values())}


def _new_key(platform: str) -> str:
    if platform == "telegram":
        return f"{secrets.randbelow(10**9) + 10**9}:AA{secrets.token_urlsafe(24)}"
    if platform == "slack":
        return f"T{secrets.token_hex(4).upper()}/B{secrets.token_hex(4).upper()}/" \
               f"{secrets.token_urlsafe(18)}"
    if platform == "discord":
        return f"{secrets.randbelow(10**18)}/{secrets.token_urlsafe(32)}"
    if platform == "dingtalk":
        return secrets.token_hex(32)
    return secrets.token_hex(16)


# -- HTTP plumbing -----------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    sim: PlatformSimulator

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # a client that timed out and left; nothing to report
        super().handle_error(request, client_address)


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, data: Any, **headers: str) -> Answer:
    return Answer(status, json.dumps(data, ensure_ascii=False).encode(), headers=headers)


def _plain(status: int, text: str, **headers: str) -> Answer:
    return Answer(status, text.encode(), "text/html; charset=utf-8", headers)


RESET = Answer(-1)  # close the socket without answering


def _retry_after(wait: float) -> dict[str, str]:
    """The ``Retry-After`` header for a wait: whole seconds, at least one."""
    return {"Retry-After": str(max(1, math.ceil(wait)))}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        sim = self.server.sim
        with sim._lock:
            sim.gets.append(urlsplit(self.path).path)
        if urlsplit(self.path).path == "/_sim/stats":
            self._answer(_json(200, sim.stats()))
        else:
            self._answer(_json(404, {"error": "not found"}))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k: v for k, v in self.headers.items()}
        request = _Request(self.server.sim, parts.path, query, headers, body)
        self._answer(request.handle())

    def _answer(self, answer: Answer) -> None:
        if answer is RESET:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass
            return
        self.send_response(answer.status)
        if answer.body or answer.status != 204:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if answer.body:
            self.wfile.write(answer.body)


# -- the platforms -----------------------------------------------------------------

_ROUTES = [
    (re.compile(r"^/cgi-bin/webhook/send$"), "wecom"),
    (re.compile(r"^/cgi-bin/aibot/response$"), "wecom"),       # a robot's response_url
    (re.compile(r"^/robot/send$"), "dingtalk"),
    (re.compile(r"^/robot/sendBySession$"), "dingtalk"),       # an app robot's sessionWebhook
    (re.compile(r"^/open-apis/auth/v3/tenant_access_token/internal$"), "feishu_app"),
    (re.compile(r"^/open-apis/im/v1/messages/(?P<message>[^/]+)/reply$"), "feishu_app"),
    (re.compile(r"^/open-apis/bot/v2/hook/(?P<key>[^/]+)$"), "feishu"),
    (re.compile(r"^/bot(?P<key>[^/]+)/(?P<method>\w+)$"), "telegram"),
    (re.compile(r"^/services/(?P<key>[^/]+/[^/]+/[^/]+)$"), "slack"),
    (re.compile(r"^/api/webhooks/(?P<key>[^/]+/[^/]+)$"), "discord"),
    (re.compile(r"^/hook/(?P<key>[^/]+)$"), "webhook"),
]


_QUERY_KEYS = {"/cgi-bin/aibot/response": "response_code", "/robot/sendBySession": "session"}


class _Request:
    """One POST: route, find the robot, inject failures, validate, rate-limit, record."""

    def __init__(self, sim: PlatformSimulator, path: str, query: dict[str, str],
                 headers: dict[str, str], body: bytes):
        self.sim, self.path, self.query, self.headers, self.body = sim, path, query, headers, body

    def handle(self) -> Answer:
        if self.path.startswith("/_sim/"):
            return self._admin()
        platform, m = next(((name, m) for pattern, name in _ROUTES
                            if (m := pattern.match(self.path))), ("", None))
        if m is None:
            return _json(404, {"error": "no such route"})
        groups = m.groupdict()
        key = groups.get("key") or self.query.get(
            _QUERY_KEYS.get(self.path, {"wecom": "key", "dingtalk": "access_token"}.get(platform, "")),
            "")
        if platform == "feishu_app":
            key = self._feishu_app_key()
        self.platform = platform
        robot = self.sim._lookup(platform, key)
        if robot is None:
            return getattr(self, f"_{platform}_unknown")()
        failure = robot._begin()
        if isinstance(failure, Answer):
            return failure
        delay = robot.latency if robot.latency is not None else self.sim.latency
        if isinstance(delay, tuple):    # (low, high): a latency that varies per request
            delay = random.uniform(*delay)
        if failure == "slow":
            delay += self.sim.slow_seconds
        if delay:
            time.sleep(delay)
        if failure == "reset":
            return RESET
        if failure == "5xx":
            return _plain(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
        self.robot = robot
        self.forced_limit = failure == "rate_limit"
        handler = getattr(self, f"_{platform}")
        return handler(**{k: v for k, v in groups.items() if k != "key"})

    # helpers
    def _data(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def _limited(self, scope: str = "", extra: list[tuple[int, float]] = ()) -> float | None:
        if self.forced_limit:
            return 1.0
        return self.robot._admit(scope, extra)

    def _accept(self, payload: Any, text: str, chat_id: str | None = None) -> None:
        self.robot._record(Received(self.platform, self.robot.key, payload, text,
                                    dict(self.headers), dict(self.query), chat_id))

    def _keywords_ok(self, *texts: str) -> bool:
        if not self.robot.keywords:
            return True
        return any(k in t for k in self.robot.keywords for t in texts)

    # -- WeCom ---------------------------------------------------------------------
    def _wecom_unknown(self) -> Answer:
        return _json(200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [sim], "
                           "more info at https://open.work.weixin.qq.com/devtool/query?e=93000"})

    def _wecom(self) -> Answer:
        data = self._data()
        if not isinstance(data, dict):
            return _json(200, {"errcode": 40035, "errmsg": "invalid parameter: invalid json"})
        msgtype = data.get("msgtype")
        if msgtype not in WECOM_LIMITS:
            return _json(200, {"errcode": 40008, "errmsg": "invalid message type"})
        section = data.get(msgtype)
        content = section.get("content") if isinstance(section, dict) else None
        if not isinstance(content, str) or not content.strip():
            return _json(200, {"errcode": 44004, "errmsg": "empty content"})
        for name in ("mentioned_list", "mentioned_mobile_list"):
            value = section.get(name)
            if value is not None and not (isinstance(value, list)
                                          and all(isinstance(v, str) for v in value)):
                return _json(200, {"errcode": 40035, "errmsg": f"invalid parameter: {name}"})
        limit = WECOM_LIMITS[msgtype]
        if len(content.encode()) > limit:
            return _json(200, {"errcode": 40058,
                               "errmsg": f"{msgtype}.content exceed max length {limit}"})
        if self._limited() is not None:
            return _json(200, {"errcode": 45009, "errmsg": "api freq out of limit"})
        self._accept(data, content)
        return _json(200, {"errcode": 0, "errmsg": "ok"})

    # -- DingTalk ------------------------------------------------------------------
    def _dingtalk_unknown(self) -> Answer:
        return _json(200, {"errcode": 300005, "errmsg": "token is not exist"})

    def _dingtalk(self) -> Answer:
        if self.robot.secret:
            problem = _check_dingtalk_sign(self.robot.secret, self.query)
            if problem:
                return _json(200, {"errcode": 310000, "errmsg": problem})
        if len(self.body) > BODY_LIMIT["dingtalk"]:
            return _json(200, {"errcode": 460101, "errmsg": "message too long"})
        data = self._data()
        if not isinstance(data, dict):
            return _json(200, {"errcode": 40035, "errmsg": "缺少参数 json"})
        msgtype = data.get("msgtype")
        section = data.get(msgtype) if isinstance(msgtype, str) else None
        if msgtype == "text":
            text = section.get("content") if isinstance(section, dict) else None
            title = ""
        elif msgtype == "markdown":
            text = section.get("text") if isinstance(section, dict) else None
            title = section.get("title") if isinstance(section, dict) else None
            if not isinstance(title, str) or not title:
                return _json(200, {"errcode": 40035, "errmsg": "缺少参数 title"})
        else:
            return _json(200, {"errcode": 40035, "errmsg": "不合法的 msgtype"})
        if not isinstance(text, str) or not text:
            return _json(200, {"errcode": 40035, "errmsg": "缺少参数 text"})
        if not self._keywords_ok(text, title):
            return _json(200, {"errcode": 310000, "errmsg": "keywords not in content, more: "
                               "[https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"})
        if self._limited() is not None:
            return _json(200, {"errcode": 130101,
                               "errmsg": "send too fast, exceed 20 times per minute"})
        self._accept(data, text)
        return _json(200, {"errcode": 0, "errmsg": "ok"})

    # -- Feishu --------------------------------------------------------------------
    def _feishu_unknown(self) -> Answer:
        return _json(200, {"code": 19001, "data": {},
                           "msg": "param invalid: incoming webhook access token invalid"})

    def _feishu(self) -> Answer:
        bad_request = _json(400, {"code": 9499, "msg": "Bad Request", "data": {}})
        if len(self.body) > BODY_LIMIT["feishu"]:
            return bad_request
        data = self._data()
        if not isinstance(data, dict):
            return bad_request
        if self.robot.secret and not _feishu_sign_ok(self.robot.secret, data):
            return _json(200, {"code": 19021, "data": {}, "msg": "sign match fail or timestamp "
                               "is not within one hour from current time"})
        text = _feishu_text(data)
        if text is None:
            return bad_request
        if not self._keywords_ok(text):
            return _json(200, {"code": 19024, "msg": "Key Words Not Found", "data": {}})
        if self._limited() is not None:
            return _json(200, {"code": 11232, "data": {}, "msg": "frequency limited "
                               "psm[lark.oapi.app_platform_runtime]appID[1]"})
        self._accept(data, text)
        return _json(200, {"code": 0, "msg": "success", "data": {}})

    # -- Telegram ------------------------------------------------------------------
    @staticmethod
    def _tg_error(status: int, description: str, **parameters: Any) -> Answer:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return _json(status, body)

    def _telegram_unknown(self) -> Answer:
        return self._tg_error(401, "Unauthorized")

    def _telegram(self, method: str) -> Answer:
        if method != "sendMessage":
            return self._tg_error(404, "Not Found")
        data = self._data()
        if not isinstance(data, dict):
            return self._tg_error(400, "Bad Request: invalid JSON")
        chat = data.get("chat_id")
        if chat in (None, ""):
            return self._tg_error(400, "Bad Request: chat_id is empty")
        chat = str(chat)
        if chat in self.robot.kicked:
            return self._tg_error(403, "Forbidden: bot was kicked from the group chat")
        if self.robot.chats is not None and chat not in self.robot.chats:
            return self._tg_error(400, "Bad Request: chat not found")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return self._tg_error(400, "Bad Request: message text is empty")
        visible = text
        if str(data.get("parse_mode", "")).upper() == "HTML":
            try:
                visible = parse_telegram_html(text)
            except ValueError as exc:
                return self._tg_error(400, f"Bad Request: can't parse entities: {exc}")
        if len(visible.encode("utf-16-le")) // 2 > TELEGRAM_CHARS:
            return self._tg_error(400, "Bad Request: message is too long")
        if not visible.strip():
            return self._tg_error(400, "Bad Request: message text is empty")
        wait = self._limited(scope=chat, extra=[TELEGRAM_PER_BOT])
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            return self._tg_error(429, f"Too Many Requests: retry after {seconds}",
                                  retry_after=seconds)
        self._accept(data, text, chat_id=chat)
        return _json(200, {"ok": True, "result": {"message_id": len(self.robot.messages),
                                                  "date": int(time.time()),
                                                  "chat": {"id": chat}, "text": visible}})

    # -- Slack ---------------------------------------------------------------------
    def _slack_unknown(self) -> Answer:
        return _plain(404, "no_service")

    def _slack(self) -> Answer:
        data = self._data()
        if not isinstance(data, dict):
            return _plain(400, "invalid_payload")
        text = data.get("text")
        if not (isinstance(text, str) and text.strip()) and not data.get("blocks"):
            return _plain(400, "no_text")
        if isinstance(text, str) and len(text) > SLACK_CHARS:
            return _plain(400, "msg_too_long")
        wait = self._limited()
        if wait is not None:
            return _plain(429, "rate_limited", **_retry_after(wait))
        self._accept(data, text or "")
        return _plain(200, "ok")

    # -- Discord -------------------------------------------------------------------
    def _discord_unknown(self) -> Answer:
        return _json(404, {"message": "Unknown Webhook", "code": 10015})

    def _discord(self) -> Answer:
        data = self._data()
        if not isinstance(data, dict):
            return _json(400, {"message": "The request body contains invalid JSON.",
                               "code": 50109})
        content = data.get("content")
        if not (isinstance(content, str) and content.strip()) and not data.get("embeds"):
            return _json(400, {"message": "Cannot send an empty message", "code": 50006})
        if isinstance(content, str) and len(content.encode("utf-16-le")) // 2 > DISCORD_CHARS:
            return _json(400, {"message": "Invalid Form Body", "code": 50035, "errors": {
                "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                         "message": "Must be 2000 or fewer in length."}]}}})
        wait = self._limited()
        if wait is not None:
            return _json(429, {"message": "You are being rate limited.",
                               "retry_after": round(wait, 3), "global": False},
                         **_retry_after(wait))
        self._accept(data, content or "")
        if self.query.get("wait") == "true":
            return _json(200, {"id": str(len(self.robot.messages)), "content": content})
        return Answer(204)

    # -- generic webhook -----------------------------------------------------------
    def _webhook_unknown(self) -> Answer:
        return _json(404, {"error": "unknown hook"})

    def _webhook(self) -> Answer:
        if self.robot.secret:
            expected = "sha256=" + hmac.new(self.robot.secret.encode(), self.body,
                                            hashlib.sha256).hexdigest()
            given = self.headers.get("X-Broadcaster-Signature", "")
            if not hmac.compare_digest(expected, given):
                return _json(401, {"error": "bad signature"})
        data = self._data()
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return _json(400, {"error": "expected a JSON object with a text"})
        wait = self._limited()
        if wait is not None:
            return _json(429, {"error": "rate limited"},
                         **_retry_after(wait))
        self._accept(data, data["text"])
        return _json(200, {"ok": True})

    # -- Feishu app (tenant token and reply API; key = app_id) -----------------------
    def _feishu_app_key(self) -> str:
        if self.path.endswith("/tenant_access_token/internal"):
            data = self._data()
            return str(data.get("app_id", "")) if isinstance(data, dict) else ""
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.sim._token_owner(given) or ""

    def _feishu_app_unknown(self) -> Answer:
        if self.path.endswith("/tenant_access_token/internal"):
            return _json(200, {"code": 10003, "msg": "invalid param"})
        return _json(401, {"code": 99991663, "msg": "Invalid access token for authorization."})

    def _feishu_app(self, message: str | None = None) -> Answer:
        data = self._data()
        if message is None:   # the token endpoint
            if not isinstance(data, dict) or data.get("app_secret") != self.robot.secret:
                return _json(200, {"code": 10014, "msg": "app secret invalid"})
            return _json(200, {"code": 0, "msg": "ok", "tenant_access_token": self.sim._new_token(
                self.robot.key), "expire": 7200})
        if not isinstance(data, dict) or data.get("msg_type") != "text":
            return _json(400, {"code": 230001, "msg": "invalid message content"})
        try:
            text = json.loads(data.get("content") or "")["text"]
        except (ValueError, KeyError, TypeError):
            return _json(400, {"code": 230001, "msg": "content is not a JSON string with text"})
        if self._limited(scope=message) is not None:
            return _json(200, {"code": 230020, "msg": "This message is being processed too often."})
        self._accept(data, text, chat_id=message)
        return _json(200, {"code": 0, "msg": "success", "data": {"message_id": f"om_r{message}"}})

    # -- admin (standalone mode) ----------------------------------------------------
    def _admin(self) -> Answer:
        data = self._data()
        if not isinstance(data, dict):
            return _json(400, {"error": "expected a JSON object"})
        try:
            if self.path == "/_sim/robots":
                options = {k: v for k, v in data.items() if k not in ("platform", "key")}
                robot = self.sim.add_robot(data["platform"], data.get("key"), **options)
                return _json(200, {"platform": robot.platform, "key": robot.key,
                                   "config": robot.config()})
            if self.path == "/_sim/fail":
                robot = self.sim.robot(data["platform"], data["key"])
                robot.fail_next(data["mode"], int(data.get("count", 1)))
                return _json(200, {"ok": True})
        except (KeyError, TypeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(404, {"error": "no such route"})


# -- platform algorithms, written independently of broadcaster's ------------------------


def _check_dingtalk_sign(secret: str, query: dict[str, str]) -> str | None:
    """None if the query's timestamp and sign are valid, else DingTalk's errmsg."""
    ts, given = query.get("timestamp", ""), query.get("sign", "")
    if not ts or not given:
        return "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
    if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600 * 1000:
        return "invalid timestamp"
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(mac).decode(), given):
        return "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"
    return None


def _feishu_sign_ok(secret: str, data: dict) -> bool:
    ts, given = str(data.get("timestamp", "")), data.get("sign")
    if not ts.isdigit() or not isinstance(given, str):
        return False
    if abs(int(ts) - time.time()) > 3600:
        return False
    mac = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(mac).decode(), given)


def _feishu_text(data: dict) -> str | None:
    """The text of a valid Feishu message, or None when the body is malformed."""
    kind = data.get("msg_type")
    if kind == "text":
        text = (data.get("content") or {}).get("text") if isinstance(data.get("content"), dict) \
            else None
        return text if isinstance(text, str) and text else None
    if kind == "interactive":
        card = data.get("card")
        if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
            return None
        texts = [el["text"]["content"] for el in card["elements"]
                 if isinstance(el, dict) and isinstance(el.get("text"), dict)
                 and isinstance(el["text"].get("content"), str)]
        return "\n".join(texts) if texts else None
    if kind == "post":
        post = (data.get("content") or {}).get("post")
        return json.dumps(post, ensure_ascii=False) if isinstance(post, dict) else None
    return None


_TG_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
            "blockquote", "tg-spoiler", "span", "tg-emoji"}
_TG_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+(?:\s*=\s*(?:\"[^\"]*\"|"
                     r"'[^']*'|[^\s>\"']+))?)*)\s*>")
_TG_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_TG_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def parse_telegram_html(text: str) -> str:
    """The visible text of a Telegram HTML message; ValueError as Telegram would refuse it."""
    visible: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        offset = len(text[:i].encode())
        if c == "<":
            m = _TG_TAG.match(text, i)
            if not m:
                raise ValueError(f"Unsupported start tag at byte offset {offset}")
            closing, tag = m.group(1) == "/", m.group(2).lower()
            if tag not in _TG_TAGS:
                raise ValueError(f'Unsupported start tag "{tag}" at byte offset {offset}')
            if closing:
                if not stack or stack[-1] != tag:
                    raise ValueError(f'Can\'t find end tag corresponding to start tag "{tag}"')
                stack.pop()
            else:
                if tag == "a" and "href" not in m.group(3):
                    raise ValueError(f"Can't find href of the link at byte offset {offset}")
                stack.append(tag)
            i = m.end()
        elif c == "&":
            m = _TG_ENTITY.match(text, i)
            if not m:
                raise ValueError(f"Unsupported HTML entity at byte offset {offset}")
            name = m.group(1)
            if name.startswith("#"):
                visible.append(chr(int(name[2:], 16) if name[1] in "xX" else int(name[1:])))
            elif name in _TG_NAMED:
                visible.append(_TG_NAMED[name])
            else:
                raise ValueError(f'Unsupported HTML entity "&{name};" at byte offset {offset}')
            i = m.end()
        elif c == ">":
            raise ValueError(f"Unexpected end tag at byte offset {offset}")
        else:
            visible.append(c)
            i += 1
    if stack:
        raise ValueError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(visible)


# -- standalone ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulator",
                                     description="Loopback simulator of the chat platforms.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="added to every answer, e.g. 50")
    parser.add_argument("--no-rate-limits", action="store_true",
                        help="accept every message, however fast")
    parser.add_argument("--strict", action="store_true",
                        help="answer unknown keys with the platform's error instead of "
                             "registering them on first use")
    args = parser.parse_args(argv)
    sim = PlatformSimulator(args.host, args.port, latency=args.latency_ms / 1000,
                            enforce_rate_limits=not args.no_rate_limits,
                            auto_register=not args.strict)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with sim:
        print(sim.base_url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
