"""The URL policy: every URL parsed once, as the HTTP client will parse it.

requests hands URLs to urllib3's parser (``urllib3.util.parse_url``); Python's
``urlsplit`` reads some of them differently (``http://evil.example\\@127.0.0.1/``
is host 127.0.0.1 to ``urlsplit``, evil.example to urllib3). So every check
here parses with urllib3, and the URL that is checked is the URL that is sent
(``Checked.url``, re-assembled by the same parser).

Refused everywhere: credentials in a URL (``user:pass@``), backslashes, spaces
and control characters, a scheme other than http(s), a URL without a host.

- ``check_webhook_url``: a robot or API URL (channels, Telegram's API, reply
  paths): https, or http to a loopback host (127.0.0.0/8, localhost, [::1]).
- ``check_fetch_url``: a feed, calendar or forecast URL: http or https.
- ``address_allowed``: the addresses a fetch may connect to: public ones;
  loopback when the configured URL names a loopback host; other private,
  link-local or reserved addresses only with ``defaults.allow_private_feeds``.

Error messages never repeat the URL: it may hold a robot's key.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)
_UNSAFE = re.compile(r"[\\\s\x00-\x1f\x7f]")


class UrlRefused(ValueError):
    """A URL the policy does not allow; the message says why, never the URL itself."""


@dataclass(frozen=True)
class Checked:
    """A URL as the HTTP client will see it: scheme, host (lowercase, IPv6 in brackets), port."""

    url: str
    scheme: str
    host: str
    port: int | None

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)


def parse(url: str) -> Checked:
    """Parse ``url`` with urllib3's parser; refuse what no policy allows (UrlRefused)."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("must not be empty")
    if _UNSAFE.search(url):
        raise UrlRefused("must not contain backslashes, spaces or control characters")
    from urllib3.exceptions import LocationParseError  # in-function: start-up (urllib3 ~50 ms)
    from urllib3.util import parse_url  # start-up time: loaded when first used

    try:
        parts = parse_url(url)
    except LocationParseError:
        raise UrlRefused("not a valid URL") from None
    if parts.auth is not None:
        raise UrlRefused("must not contain credentials (user:password@)")
    scheme = (parts.scheme or "").lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("must be an http:// or https:// URL")
    if not parts.host:
        raise UrlRefused("has no host")
    return Checked(parts.url, scheme, parts.host.lower(), parts.port)


def is_local(url: str) -> bool:
    """A ``file:`` URL or a plain path (no scheme) rather than http(s)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("", "file") or (len(scheme) == 1 and url[1:2] == ":")  # C:\ paths


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the host a URL names, not what it resolves to."""
    host = host.lower().strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str) -> Checked:
    """A robot/API URL: https, or http only to a loopback host (SPEC: tests, simulators)."""
    checked = parse(url)
    if checked.scheme == "http" and not checked.loopback:
        raise UrlRefused("must use https:// (http:// is allowed only for 127.0.0.1 and localhost)")
    return checked


def check_fetch_url(url: str) -> Checked:
    """A feed, calendar or forecast URL: http or https (where it may connect: ``address_allowed``)."""
    return parse(url)


def address_allowed(address: str, *, loopback_named: bool, allow_private: bool) -> str | None:
    """None when a fetch may connect to ``address``, else why not.

    ``loopback_named``: the configured URL itself names a loopback host, so
    loopback addresses are expected (the demo, tests); a public name that
    resolves to loopback, or a redirect there, is refused like a private address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_global or allow_private:
        return None
    if ip.is_loopback and loopback_named:
        return None
    kind = "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "private"
    return (f"refused: the host resolves to a {kind} address {ip} "
            "(set defaults.allow_private_feeds: true to allow it)")
