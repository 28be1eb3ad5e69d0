"""Secrets never show: one redactor for every line the user or a log file sees.

It redacts by the configured secret values themselves: every secret field of
every channel, of the inbound platforms (app secrets, AES keys, tokens), of
the dashboard and of the sources, whatever their length, each also in its
URL-encoded forms. A secret URL is secret as a whole (SPEC): every path
segment and query value of 6 characters or more is redacted wherever it
appears, raw or decoded, so an endpoint that echoes its path token in an
error body cannot put it in the archive, ``status``, ``log`` or ``report``.
As a second net, the shapes secrets take in webhook URLs (``key=``,
``access_token=``, ``/bot<token>/``, ``/hook/<token>``...) are masked too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"

_PATTERNS = [
    re.compile(r"(?i)((?:key|access_token|token|sign|secret|signature)=)[^&\s\"'<>]+"),
    re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+"),
    re.compile(r"(/open-apis/bot/v2/hook/)[A-Za-z0-9_-]+"),
    re.compile(r"(/services/)[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+"),
    re.compile(r"(/api/webhooks/)\d+/[A-Za-z0-9_.-]+"),
    re.compile(r"(?i)(sha256=)[0-9a-f]{64}"),
    re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s]+(?=@)"),   # a database URL's password
    re.compile(r"(?i)(password=)[^&\s]+"),
]


URL_PIECE = 6   # path segments and query values this long are secrets of their own (SPEC)
# The platforms' fixed route words: the same in every robot's URL, and words this
# program prints ("webhook" is a channel type), so they are not masked on their own.
ROUTE_WORDS = frozenset({"cgi-bin", "webhook", "webhooks", "open-apis", "services", "sendMessage",
                         "broadcaster"})
_KEY = 6        # secrets are looked up by their last characters (see Redactor._present)


def secret_forms(secret: str) -> set[str]:
    """Every string that gives ``secret`` away: itself, its URL-encodings, and for a
    URL its credential pieces (path segments, query values, user info), raw and decoded."""
    forms = {secret}
    if "://" in secret:
        forms |= url_pieces(secret)
    for form in list(forms):
        forms |= {quote(form, safe=""), quote_plus(form, safe=""), quote(form), unquote(form)}
    return {f for f in forms if f}


def url_pieces(url: str) -> set[str]:
    """The parts of ``url`` that are credentials on their own (``URL_PIECE`` characters or more)."""
    try:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    except ValueError:
        return set()
    pieces = {value for _, value in parse_qsl(parts.query, keep_blank_values=True)}
    pieces |= {seg for seg in parts.path.split("/")}
    pieces |= {p for p in re.split(r"[:@]", userinfo)}
    pieces |= {unquote(p) for p in pieces}
    return {p for p in pieces if len(p) >= URL_PIECE and p not in ROUTE_WORDS}


class Redactor:
    """Masks every form of the secrets it was given, then the usual secret shapes.

    Thousands of secrets (a robot URL per group) cost one dictionary lookup per
    character of the text: forms are indexed by their last ``_KEY`` characters
    (the distinctive end of a robot URL: its key or token), and only the forms
    whose ending occurs are compared. The index is built when first needed,
    so a command that never prints a secret-bearing text never pays for it.
    Safe across threads: a new index replaces the old one whole, so secrets
    added while workers redact (a fetched token) never disturb them.
    """

    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._pending: list[str] = []
        self._by_end: dict[str, frozenset[str]] = {}
        self._short: frozenset[str] = frozenset()   # forms shorter than the key
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Redact ``secrets`` (any length) and their forms (``secret_forms``) from now on."""
        with self._lock:
            new = {s for s in secrets if s and s.strip()} - self._known
            self._known |= new
            self._pending.extend(new)

    def _index(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            by_end, short = dict(self._by_end), set(self._short)
            for secret in pending:
                for form in secret_forms(secret):
                    if len(form) < _KEY:
                        short.add(form)
                    else:
                        by_end[form[-_KEY:]] = by_end.get(form[-_KEY:], frozenset()) | {form}
            self._by_end, self._short = by_end, frozenset(short)

    def _present(self, text: str) -> list[str]:
        """The forms that occur in ``text``, the longest first."""
        if self._pending:
            self._index()
        by_end, short = self._by_end, self._short
        found = {s for s in short if s in text}
        if by_end:
            get = by_end.get
            for end in range(_KEY, len(text) + 1):
                forms = get(text[end - _KEY:end])
                if forms:
                    found |= {f for f in forms if text.endswith(f, 0, end)}
        return sorted(found, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = str(text)
        for secret in self._present(out):
            if secret in out:
                out = out.replace(secret, MASK)
        for pattern in _PATTERNS:
            out = pattern.sub(lambda m: m.group(1) + MASK, out)
        return out


def redact(text: object) -> str:
    """Pattern-only redaction, for places that have no config at hand."""
    return Redactor()(text)
