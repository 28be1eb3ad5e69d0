"""One module per platform: verify a raw request, then read the messages and joins in it.

Each module declares ``name`` and ``methods`` and implements
``parse(req, cfg, now) -> Parsed``, raising ``crypto.Refused`` when the request
is not verified (401) or malformed (400). Modules see plain data (``RawRequest``),
never the web framework, so each rule is tested on its own with the platforms'
official vectors.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from broadcaster.inbound.crypto import Refused

MODULES = ("dingtalk", "feishu", "wecom", "telegram", "slack", "generic")


@dataclass(frozen=True)
class RawRequest:
    method: str
    headers: dict[str, str]          # lower-case names
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refused("the body is not JSON", 400) from None


def module(name: str) -> ModuleType:
    if name not in MODULES:
        raise KeyError(name)
    return importlib.import_module(f"broadcaster.inbound.platforms.{name}")


def text_of(value: Any, limit: int = 4000) -> str:
    """A message text as a bounded plain string."""
    return value[:limit] if isinstance(value, str) else ""


def is_command(text: str) -> bool:
    return text.lstrip().startswith("/")
