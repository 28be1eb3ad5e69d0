"""The configured time zone: ``defaults.timezone`` of groups.yaml, read alone.

A pass with nothing to send needs only the clock's time zone. ``default_timezone``
reads the YAML event stream up to ``defaults`` (sparing it parsing thousands of
groups), and with a ``cache_dir`` keeps the answer for the next process while
groups.yaml's text and this module are unchanged (sparing it the YAML parser). ``check_zone`` is
the one check of a zone name, used by every model that takes one.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from broadcaster.config import kept

DEFAULT_TIMEZONE = "Asia/Shanghai"   # defaults.timezone when groups.yaml names none
KEPT = "timezone"


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None
    return name


def default_timezone(root: Path, cache_dir: Path | None = None) -> str:
    """``defaults.timezone`` of groups.yaml, read without loading the groups.

    Anything unusual (no file, broken YAML, a bad zone) falls back to the
    default here and is reported by the full load wherever the groups are used.
    """
    try:
        text = (root / "groups.yaml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return DEFAULT_TIMEZONE
    key = kept.digest(KEPT, kept.file_versions([Path(__file__)]), text)   # this code reads it
    if cache_dir is not None:
        zone = kept.kept(cache_dir, KEPT, key)
        if isinstance(zone, str):
            return zone
    zone = _peek(text)
    if cache_dir is not None:
        kept.keep(cache_dir, KEPT, key, zone)
    return zone


def _peek(text: str) -> str:
    import yaml  # start-up time: only when groups.yaml changed since the zone was kept

    try:
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
    except (ValueError, yaml.YAMLError):
        pass
    return DEFAULT_TIMEZONE
