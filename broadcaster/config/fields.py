"""Field types the config files share, each validated with one message wherever it is used.

``Slug``, ``Name``, ``Selectors`` and ``SourceUrl`` are annotated types for pydantic
models (groups, staff, tickets, the feeds sections the sources declare, schedules);
``check_zone`` and ``DEFAULT_TIMEZONE`` come from ``config/timezone.py``, which reads
``defaults.timezone`` alone, and ``is_local`` from ``net/urls.py``.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

from broadcaster.config.timezone import DEFAULT_TIMEZONE as DEFAULT_TIMEZONE  # re-exported
from broadcaster.config.timezone import check_zone as check_zone
from broadcaster.net.urls import check_fetch_url, is_local

SLUG = re.compile(r"^[a-z0-9_-]+$")


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("may hold only lowercase letters, digits, - and _")
    return value


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _selectors(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("give at least one selector (e.g. [all])")
    for sel in v:
        if not isinstance(sel, str) or not sel.strip():
            raise ValueError(f"invalid selector {sel!r}")
    return v


def source_url(v: str) -> str:
    """An http(s) URL, a ``file:`` URL or a path relative to the root; ValueError otherwise.

    An http(s) URL is parsed as the HTTP client will parse it
    (``broadcaster.net.urls``): credentials, backslashes and spaces are refused.
    Where it may connect (no private address unless ``defaults.allow_private_feeds``)
    is checked when it is fetched; a ``file:`` path must be inside the root then.
    """
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    scheme = urlsplit(v).scheme.lower()
    if scheme in ("http", "https"):
        check_fetch_url(v)
        return v
    if is_local(v):
        return v
    raise ValueError(f"unsupported URL scheme {scheme!r} (use https://, http://, file: or a path)")


Slug = Annotated[str, AfterValidator(_slug)]     # an id: lowercase letters, digits, - and _
Name = Annotated[str, AfterValidator(_name)]     # a name people read: not blank, trimmed
Selectors = Annotated[list[str], AfterValidator(_selectors)]   # a `to:` list
SourceUrl = Annotated[str, AfterValidator(source_url)]        # https://, http://, file: or a path
