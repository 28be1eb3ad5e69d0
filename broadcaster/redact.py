"""Secrets never show: one redactor for every line the user or a log file sees.

It knows the exact secret strings of the loaded config (channel URLs, tokens,
signing secrets) and, as a second net, the shapes secrets take in webhook URLs
(``key=``, ``access_token=``, ``/bot<token>/``, ``/hook/<token>``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if s and len(s) >= 4}
        self._secrets = sorted(set(self._secrets) | found, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = str(text)
        for secret in self._secrets:
            if secret in out:
                out = out.replace(secret, MASK)
        for pattern in _PATTERNS:
            out = pattern.sub(lambda m: m.group(1) + MASK, out)
        return out


def redact(text: object) -> str:
    """Pattern-only redaction, for places that have no config at hand."""
    return Redactor()(text)
