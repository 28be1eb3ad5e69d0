"""Field types the config files share, each validated with one message wherever it is used.

``Slug``, ``Name``, ``Selectors`` and ``SourceUrl`` are annotated types for pydantic
models (groups, staff, tickets, the feeds sections the sources declare, schedules);
``check_zone`` and ``is_local`` are plain checks behind them; ``default_timezone`` reads
``defaults.timezone`` alone (a pass with nothing due needs no more of the config).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

from broadcaster.net.urls import check_fetch_url

SLUG = re.compile(r"^[a-z0-9_-]+$")
DEFAULT_TIMEZONE = "Asia/Shanghai"   # defaults.timezone when groups.yaml names none


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("may hold only lowercase letters, digits, - and _")
    return value


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None
    return name


def is_local(url: str) -> bool:
    """A ``file:`` URL or a plain path (no scheme) rather than http(s)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("", "file") or (len(scheme) == 1 and url[1:2] == ":")  # C:\ paths


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


def default_timezone(root: Path) -> str:
    """``defaults.timezone`` of groups.yaml, read without loading the groups.

    A pass with nothing to send needs only the clock's time zone; reading the
    YAML event stream up to ``defaults`` spares it parsing thousands of groups.
    Anything unusual (no file, broken YAML, a bad zone) falls back to the
    default here and is reported by the full load wherever the groups are used.
    """
    import yaml  # start-up time: loaded when first used (a pass with nothing due reads only this)

    try:
        text = (root / "groups.yaml").read_text(encoding="utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        depth, top_key, want_top_key, sub_key, want_sub_key = 0, None, True, None, True
        for ev in yaml.parse(text, Loader=loader):
            if isinstance(ev, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                want_sub_key = want_sub_key or depth == 2
            elif isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
                if depth == 0:
                    break
                if depth == 1:
                    want_top_key = True
                elif depth == 2:
                    want_sub_key = True
            elif isinstance(ev, yaml.ScalarEvent | yaml.AliasEvent):
                value = getattr(ev, "value", None)
                if depth == 1:
                    top_key = value if want_top_key else top_key
                    want_top_key = not want_top_key
                elif depth == 2 and top_key == "defaults":
                    if not want_sub_key and sub_key == "timezone":
                        return check_zone(value)
                    sub_key = value if want_sub_key else sub_key
                    want_sub_key = not want_sub_key
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        pass
    return DEFAULT_TIMEZONE
