"""Filters for Chinese messages: dates, weekdays, lunar dates, relative days, numbers.

Every filter that reads a date accepts a ``date``, a ``datetime`` or an ISO 8601
string; an aware datetime is shown in the group's timezone (that of ``now``).
Relative filters (``relative_day``, ``days_until``) count from ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from broadcaster.templating import calendar

ELLIPSIS = "…"


def _tz(ctx: Context) -> tzinfo | None:
    now = ctx.get("now")
    return now.tzinfo if isinstance(now, datetime) else None


def _moment(ctx: Context, value: Any) -> date | datetime:
    """``value`` as a date, or a datetime in the group's timezone."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a date: {value!r}") from None
    if isinstance(value, datetime):
        tz = _tz(ctx)
        if value.tzinfo is not None and tz is not None:
            return value.astimezone(tz)
        return value
    if isinstance(value, date):
        return value
    raise TypeError(f"not a date: {value!r}")


def _today(ctx: Context) -> date:
    now = ctx.get("now")
    if not isinstance(now, datetime):
        raise ValueError("this filter needs 'now'")
    return now.date()


@pass_context
def cn_date(ctx: Context, value: Any, year: bool = True) -> str:
    """``2026年11月22日``; ``cn_date(false)`` gives ``11月22日``."""
    return calendar.cn_date(_moment(ctx, value), year=year)


@pass_context
def weekday(ctx: Context, value: Any, prefix: str = "星期") -> str:
    """``星期日``; ``weekday("周")`` gives ``周日``."""
    return calendar.weekday_cn(_moment(ctx, value), prefix)


@pass_context
def lunar(ctx: Context, value: Any, year: bool = False) -> str:
    """``十月十四``; ``lunar(true)`` gives ``丙午年十月十四``."""
    info = calendar.lunar_date(calendar.as_date(_moment(ctx, value)))
    return info.year + info.text if year else info.text


@pass_context
def hhmm(ctx: Context, value: Any) -> str:
    """``07:30``."""
    moment = _moment(ctx, value)
    if not isinstance(moment, datetime):
        raise TypeError(f"hhmm needs a time, got the date {moment}")
    return f"{moment:%H:%M}"


@pass_context
def relative_day(ctx: Context, value: Any) -> str:
    """``今天``, ``明天``, ``后天``, ``昨天``, ``前天``, ``本周六``, ``下周一``, ``上周五``,
    else ``11月28日`` (with the year when it is another year's)."""
    day = calendar.as_date(_moment(ctx, value))
    today = _today(ctx)
    delta = (day - today).days
    named = {0: "今天", 1: "明天", 2: "后天", -1: "昨天", -2: "前天"}
    if delta in named:
        return named[delta]
    week_gap = (day.toordinal() - day.weekday() - (today.toordinal() - today.weekday())) // 7
    prefix = {0: "本", 1: "下", -1: "上"}.get(week_gap)
    if prefix:
        return calendar.weekday_cn(day, prefix + "周")
    return calendar.cn_date(day, year=day.year != today.year)


@pass_context
def days_until(ctx: Context, value: Any) -> int:
    """Whole days from today to ``value`` (0 today, negative if past)."""
    return (calendar.as_date(_moment(ctx, value)) - _today(ctx)).days


def truncate_bytes(value: Any, length: int, end: str = ELLIPSIS) -> str:
    """At most ``length`` UTF-8 bytes, never cutting a character; ``end`` marks a cut."""
    text = str(value)
    data = text.encode("utf-8")
    if len(data) <= length:
        return text
    room = length - len(end.encode("utf-8"))
    if room <= 0:  # no room for the mark: just cut
        return _whole_escapes(data[: max(length, 0)].decode("utf-8", errors="ignore"))
    return _whole_escapes(data[:room].decode("utf-8", errors="ignore").rstrip()) + end


def _whole_escapes(cut: str) -> str:
    """``cut`` without a Markdown escape cut in half (a lone trailing backslash residents would see)."""
    trailing = len(cut) - len(cut.rstrip("\\"))
    return cut[:-1] if trailing % 2 else cut


def join_cn(items: Iterable[Any], d: str = "、", last: str | None = None) -> str:
    """``张阿姨、李叔叔、小王``; ``join_cn(last="和")`` gives ``张阿姨、李叔叔和小王``."""
    words = [str(i) for i in items]
    if last is not None and len(words) > 1:
        return d.join(words[:-1]) + last + words[-1]
    return d.join(words)


def number(value: Any, digits: int = 0) -> str:
    """``12,345``; ``number(1)`` gives ``12,345.6``."""
    if value is None:
        return "--"
    return f"{float(value):,.{digits}f}" if digits else f"{_half_up(value):,}"


def temp(value: Any, digits: int = 0) -> str:
    """``12°C`` (rounded); ``--`` when there is no value."""
    if value is None:
        return "--"
    shown = f"{float(value):.{digits}f}" if digits else str(_half_up(value))
    return f"{shown}°C"


def percent(value: Any) -> str:
    """``30%``; ``--`` when there is no value."""
    return "--" if value is None else f"{_half_up(value)}%"


def _half_up(value: Any) -> int:
    """Round as people do (2.5 -> 3, -2.5 -> -2), not as bankers do."""
    return math.floor(float(value) + 0.5)


FILTERS = {
    "cn_date": cn_date,
    "weekday": weekday,
    "lunar": lunar,
    "hhmm": hhmm,
    "relative_day": relative_day,
    "days_until": days_until,
    "truncate_bytes": truncate_bytes,
    "join_cn": join_cn,
    "number": number,
    "temp": temp,
    "percent": percent,
}
