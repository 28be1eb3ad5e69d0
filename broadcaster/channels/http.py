"""What every HTTP channel shares: one POST, URL policy, retry-after, redaction.

- The HTTP client is ``broadcaster.net``'s webhook client (``shared_client()``
  unless dispatch hands the channel its own): https only (http to loopback),
  no redirects, a connect timeout, a read timeout and a total deadline.
- ``post_json()``: one POST; network failures (timeouts, the deadline,
  refused or reset connections) become a transient result whose reason never
  carries the URL.
- ``check_url()``: the SPEC's URL policy at config time, parsed as the client parses.
- ``HttpChannel``: base class of every HTTP adapter. It owns ``send()`` (one
  POST, then the adapter's ``classify()`` of the answer, then the cap on the
  wait a platform may ask for, then redaction of every secret from the
  reason), the per-robot rate-limit key and the client; an adapter declares
  its ``request()`` (URL, body, headers: signing happens there, at send time)
  and its ``classify()`` when the HTTP status is not the platform's verdict.
- An answer that is not what the platform sends (an HTML page, cut-off JSON,
  from a proxy or a platform in trouble) is transient: the message is retried.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator

from broadcaster.channels.base import (
    Channel,
    ChannelConfig,
    Part,
    RateLimit,
    SendResult,
)
from broadcaster.net.deadline import CONNECT_TIMEOUT, DEADLINE, READ_TIMEOUT, Timeout
from broadcaster.net.urls import UrlRefused, check_webhook_url
from broadcaster.redact import Redactor

if TYPE_CHECKING:    # the HTTP stack (requests, urllib3) is imported by the first request
    import requests

    from broadcaster.net.client import HttpClient, HttpFailure

MAX_RETRY_AFTER = 3600.0   # seconds: a platform asking for a longer wait gets a failure instead

# -- URL policy ------------------------------------------------------------------


def check_url(url: str) -> str:
    """Accept https URLs, and http only to a loopback host; no credentials, no backslashes.

    Parsed as the HTTP client parses it (``broadcaster.net.urls``); the URL kept
    is the one the client will send. Error messages never repeat the URL: it
    holds the robot's key.
    """
    return check_webhook_url(url).url


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


# -- one request -----------------------------------------------------------------


def encode_json(body: Any) -> bytes:
    """The exact bytes sent: compact UTF-8 JSON (Chinese text is 3 bytes, not 6)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post_json(
    client: HttpClient,
    url: str,
    body: Any,
    timeout: Timeout = (CONNECT_TIMEOUT, READ_TIMEOUT),
    headers: dict[str, str] | None = None,
    deadline: float = DEADLINE,
) -> tuple[requests.Response | None, float, SendResult | None]:
    """POST ``body`` as JSON; return (response, latency_ms, None) or (None, latency_ms, error).

    The error is a transient ``SendResult`` for timeouts, the deadline and
    connection failures, permanent for a request that can never work (a URL
    the policy refuses).
    """
    from broadcaster.net.client import HttpFailure  # start-up time: loaded when first used

    data = body if isinstance(body, bytes) else encode_json(body)
    all_headers = {"Content-Type": "application/json; charset=utf-8"}
    all_headers.update(headers or {})
    start = time.monotonic()
    try:
        response = client.post(url, data=data, headers=all_headers, timeout=timeout,
                               deadline=deadline)
    except (HttpFailure, UrlRefused) as exc:
        latency = (time.monotonic() - start) * 1000
        outcome, reason = failure_reason(exc)
        return None, latency, SendResult(outcome, reason=reason, latency_ms=latency)
    return response, (time.monotonic() - start) * 1000, None


def failure_reason(exc: HttpFailure | UrlRefused) -> tuple[str, str]:
    """(outcome, reason) of a POST without an answer; a lost answer may hide a delivery."""
    if isinstance(exc, UrlRefused):
        return "permanent", f"URL refused: {exc}"
    reason = exc.reason
    if exc.outcome == "transient" and ("read timeout" in reason or "deadline" in reason):
        reason += " (the message may have been delivered)"
    return exc.outcome, reason


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
        except (TypeError, ValueError, OverflowError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def cap_retry_after(result: SendResult) -> SendResult:
    """A platform may ask for a wait up to ``MAX_RETRY_AFTER``; a longer one fails the send.

    Whatever the platform sends (``Retry-After: 99999999``, ``retry_after: 1e12``),
    no date is ever computed from more than the cap.
    """
    wait = result.retry_after
    if wait is None:
        return result
    if not math.isfinite(wait) or wait < 0:
        result.retry_after = None
    elif wait > MAX_RETRY_AFTER:
        asked = f"{wait / 86400:.0f} days" if wait >= 86400 else f"{wait / 3600:.1f} h"
        result.outcome, result.retry_after = "permanent", None
        result.reason = (f"{result.reason or 'rate limited'} (the platform asked to wait "
                         f"{asked}, more than the {MAX_RETRY_AFTER / 3600:g} h cap)")
    return result


def response_json(response: requests.Response) -> Any:
    """The JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def garbled(response: requests.Response) -> str | None:
    """Why an answer is not one the platform sends (an HTML page, cut-off JSON), or None.

    Such an answer comes from something between us and the platform (a proxy,
    a gateway in trouble) or from a connection cut mid-answer: the message may
    not have arrived, so it is retried (transient), never failed for good.
    """
    text = response.content.lstrip()[:64].lower()
    if text.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml")):
        return f"HTTP {response.status_code} with an HTML page instead of the platform's answer"
    if text.startswith((b"{", b"[")) and response_json(response) is None:
        return f"HTTP {response.status_code} with cut-off JSON"
    return None


def garbled_result(response: requests.Response, latency_ms: float) -> SendResult | None:
    """A transient result for a garbled answer (see ``garbled``), else None."""
    why = garbled(response)
    if why is None:
        return None
    return SendResult("transient", reason=why, http_status=response.status_code,
                      latency_ms=latency_ms)


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

    timeout: Timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    deadline: float = DEADLINE
    rate_limit: ClassVar[RateLimit | None] = None

    def __init__(self, config: ChannelConfig, group_id: str, session=None, tz=None, *,
                 timeout: Timeout | None = None, deadline: float | None = None):
        super().__init__(config, group_id, session, tz)
        if timeout is not None:
            self.timeout = timeout
        if deadline is not None:
            self.deadline = deadline

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
                                             headers=headers, deadline=self.deadline)
        return self.clean(cap_retry_after(error or self.classify(response, latency)))

    def request(self, part: Part) -> tuple[str, Any, dict[str, str] | None]:
        """(URL, JSON body or its bytes, extra headers) of the POST that sends ``part``."""
        return self.config.url, part.payload, None

    def classify(self, response: requests.Response, latency_ms: float) -> SendResult:
        """The platform's answer as a result; by default its HTTP status decides."""
        return http_status_result(response, latency_ms)

    def http(self) -> HttpClient:
        if self.session is not None:
            return self.session
        from broadcaster.net.client import shared_client  # start-up time: loaded when first used

        return shared_client()

    # -- secrets ------------------------------------------------------------
    def secret_strings(self) -> list[str]:
        """Everything to hide: the config's secrets (the redactor adds the pieces of URLs)."""
        return self.config.secrets()

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
    Without a code, the HTTP status decides; a 2xx that is not JSON (an HTML
    page, cut-off JSON) is transient, a 2xx of JSON without a code permanent.
    """
    status = response.status_code
    data = response_json(response)
    code = None
    if isinstance(data, dict):
        code = next((data[k] for k in code_keys if k in data), None)
    if not isinstance(code, int):
        if status >= 300:
            return http_status_result(response, latency_ms)
        if data is None:
            return SendResult("transient", reason=garbled(response) or
                              f"HTTP {status} without the platform's answer: "
                              f"{body_snippet(response)}",
                              http_status=status, latency_ms=latency_ms)
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
