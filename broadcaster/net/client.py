"""The one HTTP client of the package: every outbound request goes through ``HttpClient``.

Two factories give the two policies:

- ``webhook_client()``: robots, bot APIs, reply paths. URLs pass
  ``check_webhook_url`` (https, http only to loopback); redirects are never
  followed (a 3xx is the answer).
- ``fetch_client(allow_private=...)``: feeds, calendars, forecasts. URLs pass
  ``check_fetch_url``; up to ``MAX_REDIRECTS`` redirects are followed, each
  target checked again; every address the host resolves to is checked before
  connecting (``urls.address_allowed``: no private or link-local address unless
  ``defaults.allow_private_feeds``), and the connection goes to the address
  that was checked.

Both: one pooled ``requests`` session (urllib3 never retries: a failed request
is the caller's to retry), one user agent, a connect timeout, a read timeout
and a total deadline per request, body included (``broadcaster.net.deadline``),
a cap on the body's size, and nothing from the environment (no proxy, no
``.netrc``: ``trust_env`` is off). ``request()`` returns a ``requests.Response``
whose body is already read, or raises ``UrlRefused`` / ``HttpFailure`` with a
reason that never carries the URL.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from broadcaster.net import deadline as deadlines
from broadcaster.net.deadline import CONNECT_TIMEOUT, DEADLINE, READ_TIMEOUT, Timeout
from broadcaster.net.urls import Checked, address_allowed, check_fetch_url, check_webhook_url

USER_AGENT = "broadcaster/0.1 (+community announcements)"
MAX_BYTES = 5 * 1024 * 1024    # an answer larger than this is refused
MAX_REDIRECTS = 5              # fetches only; webhooks follow none
POOL_CONNECTIONS = 256         # host pools kept (many groups share few hosts; tests use many ports)
POOL_MAXSIZE = 64              # connections per host: one per sending thread



class HttpFailure(Exception):
    """No complete answer: ``reason`` (safe to log, never the URL) and ``outcome``."""

    def __init__(self, reason: str, outcome: str = "transient"):
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome          # "transient" (try again later) or "permanent"


# -- connections that keep to the request's scope ------------------------------------


class _Guarded:
    """A urllib3 connection that checks the addresses it connects to and is watched
    by the request's deadline."""

    def _new_conn(self) -> socket.socket:
        scope = deadlines.active()
        if scope is None or scope.check_address is None:
            return super()._new_conn()  # type: ignore[misc]
        address = self._checked_address(scope)
        resolved, self._dns_host = self._dns_host, address   # connect to what was checked
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = resolved

    def _checked_address(self, scope: deadlines.Scope) -> str:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        addresses = [info[4][0] for info in infos]
        for address in addresses:
            why = scope.check_address(address)  # type: ignore[misc]
            if why is not None:
                scope.refused = why
                raise NewConnectionError(self, why)  # type: ignore[arg-type]
        return addresses[0]

    def request(self, *args: Any, **kwargs: Any) -> None:
        scope = deadlines.active()
        if scope is not None:
            scope.watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Guarded, HTTPConnection):
    pass


class _HTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    """requests' pooled adapter, less what this client never uses, which costs CPU on every
    request of a fan-out: proxies (none: the environment is not read, ``proxies`` is
    empty) and cookies (no jar: a cookie one robot sets never goes to another)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: Any,
                                        proxies: dict | None = None, cert: Any = None) -> Any:
        if proxies:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        try:
            host, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        except ValueError as exc:
            raise requests.exceptions.InvalidURL(exc, request=request) from None
        return self.poolmanager.connection_from_host(**host, pool_kwargs=pool_kwargs)

    def request_url(self, request: requests.PreparedRequest, proxies: dict | None) -> str:
        return super().request_url(request, proxies) if proxies else request.path_url

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = resp.status
        response.headers = requests.structures.CaseInsensitiveDict(resp.headers)
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url if isinstance(req.url, str) else req.url.decode("utf-8")
        response.request = req
        response.connection = self
        return response


# -- the client ------------------------------------------------------------------------


class HttpClient:
    """One pooled session with its URL policy, timeouts, deadline and size cap."""

    def __init__(
        self,
        check: Callable[[str], Checked],
        *,
        allow_private: bool | None = None,
        max_redirects: int = 0,
        timeout: Timeout = (CONNECT_TIMEOUT, READ_TIMEOUT),
        deadline: float = DEADLINE,
        pool_maxsize: int = POOL_MAXSIZE,
    ):
        self.check = check
        self.allow_private = allow_private      # None: no address check (webhooks)
        self.max_redirects = max_redirects
        self.timeout = timeout
        self.deadline = deadline
        session = requests.Session()
        adapter = _Adapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=pool_maxsize,
                           max_retries=0, pool_block=False)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        session.trust_env = False    # no proxy, no .netrc credentials from the environment
        self.session = session

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        data: bytes | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: Timeout | None = None,
        deadline: float | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> requests.Response:
        """One request (and its redirects, for a fetch), its body read, within the deadline.

        Raises ``UrlRefused`` (the policy refused the URL or a redirect target)
        and ``HttpFailure`` (no complete answer in time, connection failed,
        address refused, body too large).
        """
        checked = first = self.check(url)
        total = self.deadline if deadline is None else deadline
        with deadlines.scope(total) as scope:
            for _hop in range(self.max_redirects + 1):
                scope.check_address = self._address_check(first, checked)
                response = self._once(scope, total, method, checked.url, params=params,
                                      data=data, json=json, headers=headers,
                                      timeout=timeout or self.timeout, max_bytes=max_bytes)
                if not (self.max_redirects and response.is_redirect):
                    return response
                checked = self.check(urljoin(checked.url, response.headers["Location"]))
                params = None        # the Location carries its own query
            raise HttpFailure(f"more than {self.max_redirects} redirects", "permanent")

    def _address_check(self, first: Checked, hop: Checked) -> Callable[[str], str | None] | None:
        """Where this hop may connect: loopback only when the configured URL and this hop
        both name a loopback host (a redirect cannot lead inside by a public name)."""
        if self.allow_private is None:
            return None
        return functools.partial(address_allowed, loopback_named=first.loopback and hop.loopback,
                                 allow_private=self.allow_private)

    def _once(self, scope: deadlines.Scope, total: float, method: str, url: str, *,
              timeout: Timeout, max_bytes: int, **kwargs: Any) -> requests.Response:
        left = max(scope.remaining(), 0.001)
        bounded = (min(timeout[0], left), min(timeout[1], left))
        try:
            response = self._send(method, url, bounded, **kwargs)
            try:
                body = _read_capped(response, max_bytes)
            finally:
                response.close()
        except requests.RequestException as exc:
            raise _failure(exc, scope, total) from None
        response._content = body            # read under the deadline; .text/.json() work
        return response


    def _send(self, method: str, url: str, timeout: Timeout, *, params: dict | None,
              data: bytes | None, json: Any, headers: dict[str, str] | None) -> requests.Response:
        """One request through the session's pooled adapter, its body not read yet.

        What ``Session.request`` adds is left out on purpose: no cookie jar (a
        cookie one robot sets never goes to another; feeds need none), no
        settings from the environment (``trust_env`` is off), no redirects
        (``request`` follows a fetch's itself, each target checked). That is
        also a third of the CPU a request costs, which bounds a fan-out's speed.
        """
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.prepare_url(url, params)
        merged = requests.structures.CaseInsensitiveDict(self.session.headers)
        merged.update(headers or {})
        prepared.prepare_headers(merged)
        prepared.prepare_body(data, None, json)
        adapter = self.session.get_adapter(url)
        return adapter.send(prepared, stream=True, timeout=timeout, verify=True, cert=None,
                            proxies={})


def _read_capped(response: requests.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HttpFailure(f"response of {declared} bytes exceeds {max_bytes}", "permanent")
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > max_bytes:
            raise HttpFailure(f"response exceeds {max_bytes} bytes, cut", "permanent")
        chunks.append(chunk)
    return b"".join(chunks)


def _failure(exc: requests.RequestException, scope: deadlines.Scope, total: float
             ) -> HttpFailure:
    if scope.refused:
        return HttpFailure(scope.refused, "permanent")
    if scope.expired or scope.remaining() <= 0:
        return HttpFailure(f"no complete answer within the {total:g} s deadline")
    outcome, reason = describe_exception(exc)
    return HttpFailure(reason, outcome)


def describe_exception(exc: requests.RequestException) -> tuple[str, str]:
    """(outcome, reason) for a failed request; the reason never includes the URL."""
    if isinstance(exc, requests.ConnectTimeout):
        return "transient", "connect timeout"
    if isinstance(exc, requests.Timeout):
        return "transient", "read timeout"
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


# -- factories ---------------------------------------------------------------------------


def webhook_client(pool_maxsize: int = POOL_MAXSIZE, **kwargs: Any) -> HttpClient:
    """A client for robots, bot APIs and reply paths: https (loopback http), no redirects."""
    return HttpClient(check_webhook_url, pool_maxsize=pool_maxsize, **kwargs)


def fetch_client(*, allow_private: bool = False, **kwargs: Any) -> HttpClient:
    """A client for feeds, calendars and forecasts: http(s), checked redirects and addresses."""
    return HttpClient(check_fetch_url, allow_private=allow_private,
                      max_redirects=MAX_REDIRECTS, **kwargs)


_shared: dict[int, HttpClient] = {}
_shared_lock = threading.Lock()


def shared_client() -> HttpClient:
    """This process's webhook client (a forked child gets its own)."""
    pid = os.getpid()
    with _shared_lock:
        client = _shared.get(pid)
        if client is None:
            client = _shared[pid] = webhook_client()
        return client
