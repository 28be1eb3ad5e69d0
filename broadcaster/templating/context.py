"""What a template sees: ``group``, ``now``, ``today`` and its kind's data."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from broadcaster.config.groups import Group
from broadcaster.sources import festivals
from broadcaster.templating import calendar, kinds


def local_now(group: Group, now: datetime) -> datetime:
    """``now`` in the group's timezone (a naive ``now`` is taken as already local)."""
    if now.tzinfo is None:
        return now.replace(tzinfo=group.tz)
    return now.astimezone(group.tz)


def today(day: date) -> dict[str, Any]:
    """The ``today`` variable: the date as residents say it."""
    facts = _today(day)
    return {**facts, "festivals": list(facts["festivals"])}


@lru_cache(maxsize=64)  # every message of a fan-out is sent on the same day or two
def _today(day: date) -> dict[str, Any]:
    lunar = calendar.lunar_date(day)
    return {
        "date": day,
        "year": day.year,
        "month": day.month,
        "day": day.day,
        "weekday": calendar.weekday_cn(day),
        "lunar": lunar.text,
        "lunar_year": lunar.year,
        "solar_term": lunar.solar_term,
        "festivals": tuple(f.name for f in festivals.on(day)),
    }


def build_context(kind: str, group: Group, now: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The variables of one render. Only the kind's names are taken from ``data``.

    A name the caller leaves out takes its kind's default or stays undefined, so a
    template that uses it fails loudly rather than printing a blank.
    """
    moment = local_now(group, now)
    context: dict[str, Any] = {
        "group": group.context(),
        "now": moment,
        "today": today(moment.date()),
    }
    declared = kinds.get(kind)
    for name in declared.data:
        if name in data:
            context[name] = data[name]
        elif name in declared.defaults:
            context[name] = declared.defaults[name]
    return context
