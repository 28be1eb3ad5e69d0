"""What every HTTP channel shares: pooled sessions, one POST, URL policy, redaction.

- ``shared_session()``: one pooled ``requests.Session`` per process, sized for
  64 sending threads across many hosts. urllib3 never retries: a failed
  request comes back as a transient ``SendResult`` and dispatch decides.
- ``post_json()``: one POST with connect and read timeouts; network failures
  (timeouts, refused or reset connections) become a transient result whose
  reason never carries the URL.
- ``check_url()``: the SPEC's URL policy, https everywhere except loopback.
- ``HttpChannel``: base class of every HTTP adapter. It owns ``send()`` (one
  POST, then the adapter's ``classify()`` of the answer, then redaction of
  every secret from the reason), the per-robot rate-limit key and the session;
  an adapter declares its ``request()`` (URL, body, headers: signing happens
  there, at send time) and its ``classify()`` when the HTTP status is not the
  platform's verdict.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import requests
from pydantic import AfterValidator
from requests.adapters import HTTPAdapter

from broadcaster.channels.base import (
    DEFAULT_TIMEOUT,
    Channel,
    ChannelConfig,
    Part,
    RateLimit,
    SendResult,
)
from broadcaster.redact import Redactor

POOL_CONNECTIONS = 256  # host pools kept (many groups share few hosts; tests use many ports)
POOL_MAXSIZE = 64       # connections per host: one per sending thread
USER_AGENT = "broadcaster/0.1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")

Timeout = tuple[float, float]

# -- sessions ------------------------------------------------------------------


def new_session(pool_maxsize: int = POOL_MAXSIZE) -> requests.Session:
    """A Session with a large connection pool and no automatic retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=pool_maxsize,
                          max_retries=0, pool_block=False)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False  # no .netrc credentials or proxy surprises for robot URLs
    return session


_sessions: dict[int, requests.Session] = {}
_sessions_lock = threading.Lock()


def shared_session() -> requests.Session:
    """This process's pooled session (a forked child gets its own)."""
    pid = os.getpid()
    with _sessions_lock:
        session = _sessions.get(pid)
        if session is None:
            session = _sessions[pid] = new_session()
        return session


# -- URL policy ------------------------------------------------------------------


def check_url(url: str) -> str:
    """Accept https URLs, and http only to 127.0.0.1 or localhost.

    Error messages never repeat the URL: it holds the robot's key.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an https:// URL")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError("must use https:// (http:// is allowed only for 127.0.0.1 and localhost)")
    return url


HttpsUrl = Annotated[str, AfterValidator(check_url)]


def robot_url(param: str) -> Any:
    """The type of a robot URL field: policy-checked and carrying ``?param=<key>``."""
    return Annotated[str, AfterValidator(check_url),
                     AfterValidator(lambda url: require_query_param(url, param))]


def query_param(url: str, name: str) -> str:
    """The value of query parameter ``name`` in ``url`` ('' if absent)."""
    return dict(parse_qsl(urlsplit(url).query)).get(name, "")


def require_query_param(url: str, name: str) -> str:
    """Validator helper: the URL must carry ``?name=...`` (the robot's key)."""
    if not query_param(url, name):
        raise ValueError(f"the URL must contain the robot's ?{name}=...")
    return url


def url_secrets(url: str) -> list[str]:
    """Pieces of a URL that are credentials on their own: query values, long path segments."""
    parts = urlsplit(url)
    pieces = [value for _, value in parse_qsl(parts.query) if len(value) >= 8]
    pieces += [seg for seg in parts.path.split("/") if len(seg) >= 16]
    return pieces


# -- one request -----------------------------------------------------------------


def encode_json(body: Any) -> bytes:
    """The exact bytes sent: compact UTF-8 JSON (Chinese text is 3 bytes, not 6)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post_json(
    session: requests.Session,
    url: str,
    body: Any,
    timeout: Timeout = DEFAULT_TIMEOUT,
    headers: dict[str, str] | None = None,
) -> tuple[requests.Response | None, float, SendResult | None]:
    """POST ``body`` as JSON; return (response, latency_ms, None) or (None, latency_ms, error).

    The error is a transient ``SendResult`` for timeouts and connection
    failures, permanent for a request that can never work (a malformed URL).
    """
    data = body if isinstance(body, bytes) else encode_json(body)
    all_headers = {"Content-Type": "application/json; charset=utf-8"}
    all_headers.update(headers or {})
    start = time.monotonic()
    try:
        response = session.post(url, data=data, headers=all_headers, timeout=timeout,
                                allow_redirects=False)
    except requests.RequestException as exc:
        latency = (time.monotonic() - start) * 1000
        outcome, reason = describe_exception(exc)
        return None, latency, SendResult(outcome, reason=reason, latency_ms=latency)
    return response, (time.monotonic() - start) * 1000, None


def describe_exception(exc: requests.RequestException) -> tuple[str, str]:
    """(outcome, reason) for a failed request; the reason never includes the URL."""
    if isinstance(exc, requests.ConnectTimeout):
        return "transient", "connect timeout"
    if isinstance(exc, requests.Timeout):
        return "transient", "read timeout (the message may have been delivered)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "transient", "TLS error"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return "permanent", "invalid URL"
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("reset by peer", "connection reset"),
        ("RemoteDisconnected", "connection closed without a response"),
        ("closed connection without response", "connection closed without a response"),
        ("Name or service not known", "DNS lookup failed"),
        ("Temporary failure in name resolution", "DNS lookup failed"),
        ("Network is unreachable", "network unreachable"),
    ):
        if needle in text:
            return "transient", reason
    return "transient", f"connection error ({type(exc).__name__})"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def response_json(response: requests.Response) -> Any:
    """The JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def body_snippet(response: requests.Response, size: int = 200) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= size else text[:size] + "…"


def http_status_result(response: requests.Response, latency_ms: float, reason: str = "",
                       code: str | None = None) -> SendResult:
    """The outcome a bare HTTP status implies: 2xx sent, 429/5xx/408 transient, 4xx permanent."""
    status = response.status_code
    reason = reason or f"HTTP {status}: {body_snippet(response)}".rstrip(": ")
    if 200 <= status < 300:
        return SendResult("sent", http_status=status, code=code, latency_ms=latency_ms)
    if status == 429 or status == 408 or status >= 500:
        return SendResult("transient", reason=reason, http_status=status, code=code,
                          retry_after=parse_retry_after(response.headers.get("Retry-After")),
                          latency_ms=latency_ms)
    return SendResult("permanent", reason=reason, http_status=status, code=code,
                      latency_ms=latency_ms)


# -- base class ------------------------------------------------------------------


class HttpChannel(Channel):
    """A channel that POSTs JSON. ``timeout`` may be set per instance (tests use short ones).

    Declarations: ``rate_limit`` (per robot; override ``rate_limits()`` for more)
    and ``credential()``, the secret that names the robot (its URL unless the
    platform keys robots by a query parameter or a token).
    """

    timeout: Timeout = DEFAULT_TIMEOUT
    rate_limit: ClassVar[RateLimit | None] = None

    def __init__(self, config: ChannelConfig, group_id: str, session=None, tz=None, *,
                 timeout: Timeout | None = None):
        super().__init__(config, group_id, session, tz)
        if timeout is not None:
            self.timeout = timeout

    # -- declarations -------------------------------------------------------
    def credential(self) -> str:
        return self.config.url

    def robot_key(self) -> str:
        return f"{self.type_name}:{self.hashed(self.credential())}"

    def rate_limits(self) -> list[tuple[str, RateLimit]]:
        return [(self.robot_key(), self.rate_limit)] if self.rate_limit else []

    @staticmethod
    def hashed(value: str) -> str:
        """A short, stable, secret-free id for a credential (rate-limit keys)."""
        return hashlib.sha256(value.encode()).hexdigest()[:16]

    # -- sending ------------------------------------------------------------
    def send(self, part: Part) -> SendResult:
        url, body, headers = self.request(part)
        response, latency, error = post_json(self.http(), url, body, timeout=self.timeout,
                                             headers=headers)
        return self.clean(error or self.classify(response, latency))

    def request(self, part: Part) -> tuple[str, Any, dict[str, str] | None]:
        """(URL, JSON body or its bytes, extra headers) of the POST that sends ``part``."""
        return self.config.url, part.payload, None

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        """The platform's answer as a result; by default its HTTP status decides."""
        return http_status_result(response, latency_ms)

    def http(self) -> requests.Session:
        return self.session if self.session is not None else shared_session()

    # -- secrets ------------------------------------------------------------
    def secret_strings(self) -> list[str]:
        """Everything to hide: the config's secrets and the credential pieces of its URLs."""
        secrets = self.config.secrets()
        for value in list(secrets):
            if "://" in value:
                secrets.extend(url_secrets(value))
        return secrets

    @functools.cached_property
    def _redactor(self) -> Redactor:
        return Redactor(self.secret_strings())

    def clean(self, result: SendResult) -> SendResult:
        """``result`` with no secret left in its reason."""
        if result.reason:
            result.reason = self._redactor(result.reason)
        return result


def json_code_result(
    response: requests.Response,
    latency_ms: float,
    *,
    code_keys: tuple[str, ...] = ("errcode",),
    message_keys: tuple[str, ...] = ("errmsg",),
    transient: dict[int, float | None] | None = None,
) -> SendResult:
    """Classify an answer whose verdict is a code in a JSON body (WeCom, DingTalk, Feishu).

    Code 0 is sent; a code in ``transient`` (code -> retry-after seconds or
    None) is retried; any other code is permanent with the platform's message.
    Without a code, the HTTP status decides; a 2xx without one is permanent.
    """
    status = response.status_code
    data = response_json(response)
    code = None
    if isinstance(data, dict):
        code = next((data[k] for k in code_keys if k in data), None)
    if not isinstance(code, int):
        if status >= 300:
            return http_status_result(response, latency_ms)
        return SendResult("permanent", reason=f"unexpected answer: {body_snippet(response)}",
                          http_status=status, latency_ms=latency_ms)
    message = next((str(data[k]) for k in message_keys if k in data), "")
    if code == 0:
        return SendResult("sent", http_status=status, code="0", latency_ms=latency_ms)
    reason = f"{code}: {message}" if message else str(code)
    transient = transient or {}
    if code in transient:
        retry = transient[code]
        header = parse_retry_after(response.headers.get("Retry-After"))
        return SendResult("transient", reason=reason, http_status=status, code=str(code),
                          retry_after=header if header is not None else retry,
                          latency_ms=latency_ms)
    return SendResult("permanent", reason=reason, http_status=status, code=str(code),
                      latency_ms=latency_ms)
