"""Holidays: traditional festivals and solar terms (lunar_python), statutory days off (holidays CN).

Declares:
- content ``holidays`` (``Holidays`` below): posts only on a greeting day, rendering
  the ``holiday`` template kind (with its per-festival files ``holiday_<key>``);
- config: ``feeds/*.yaml`` ``holidays:`` (``HolidaysConfig``) — ``greet`` (keys of the
  one festival list, festivals.py; default 元旦, 除夕, 春节, 元宵节, 端午节, 七夕节,
  中秋节, 国庆节, 重阳节, 腊八节, 冬至) and ``solar_terms`` (greet all 24 terms);
- no network: both calendars are computed locally;
- state: ``holiday-greetings`` — which groups were greeted for which festival day,
  so a job running twice greets once.

A festival is ``{key, name, kind, date, lunar, arrangement}``: ``kind`` is
``traditional`` (lunar calendar), ``statutory`` (元旦, 劳动节, 国庆节) or
``solar_term``; ``arrangement`` is, when the day falls in a statutory break, the
break (``start``, ``end``, ``days``) and its make-up workdays (``workdays``), else None.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, field_validator

from broadcaster.sources import festivals
from broadcaster.sources.festivals import DEFAULT_GREET, FESTIVALS, SOLAR_TERMS
from broadcaster.sources.kinds import ContentKind, RunContext, Section, TemplateKind, register

if TYPE_CHECKING:
    from holidays import HolidayBase

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")   # in 休息日（由 2026-02-14 调休）
GREETED = "holiday-greetings"   # state: which groups were greeted for which festival day
DEFAULT_FESTIVAL = "zhongqiu"   # what a sample greets when no festival is asked for


class HolidaysConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    greet: list[str] = list(DEFAULT_GREET)   # festival keys (and solar-term slugs) greeted
    solar_terms: bool = False                # greet every one of the 24 solar terms too

    @field_validator("greet")
    @classmethod
    def _known(cls, v):
        unknown = [k for k in v if k not in FESTIVALS and k not in SOLAR_TERMS]
        if unknown:
            festivals = [k for k, f in FESTIVALS.items() if f.kind != "solar_term"]
            known = ", ".join([*festivals, "or a solar term such as lichun"])
            raise ValueError(f"unknown festival {', '.join(map(repr, unknown))} (known: {known})")
        return v

    def greets(self, key: str) -> bool:
        return key in self.greet or (self.solar_terms and key in SOLAR_TERMS)


@lru_cache(maxsize=8)
def _statutory(year: int) -> HolidayBase:
    import holidays  # start-up: a schedules check declares this kind without the calendar

    return holidays.China(years=range(year - 1, year + 2), language="zh_CN")


def is_makeup_workday(day: date) -> bool:
    """A weekend day that is a working day (调休上班)."""
    return day in _statutory(day.year).weekend_workdays


def is_day_off(day: date) -> bool:
    """A statutory holiday, or a weekend that is not a make-up workday."""
    cal = _statutory(day.year)
    return day in cal or (day.weekday() >= 5 and day not in cal.weekend_workdays)


def day_info(day: date) -> dict:
    """What the statutory calendar says about ``day`` (for templates' ``today``)."""
    name = _statutory(day.year).get(day)
    return {"holiday": name, "day_off": is_day_off(day), "makeup_workday": is_makeup_workday(day)}


def arrangement(day: date) -> dict | None:
    """The statutory break containing ``day`` and its make-up workdays, or None."""
    cal = _statutory(day.year)
    if not is_day_off(day):
        return None
    start = end = day
    while is_day_off(start - timedelta(days=1)):
        start -= timedelta(days=1)
    while is_day_off(end + timedelta(days=1)):
        end += timedelta(days=1)
    span = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if not any(d in cal for d in span):
        return None    # an ordinary weekend
    # the days off "substituted from" a weekend name the make-up workdays that pay for them
    workdays = sorted({
        date.fromisoformat(found)
        for d in span
        for found in _ISO_DATE.findall(cal.get(d) or "")
    })
    return {"start": start, "end": end, "days": len(span), "workdays": workdays}


def festivals_on(day: date) -> list[dict]:
    """Every festival and solar term we know on ``day`` (greeted or not)."""
    found = [(f.key, f.kind) for f in festivals.on(day)]
    term = festivals.term_key(festivals.lunar_month_day(day)[2])
    if term is not None:
        found.append((term, "solar_term"))
    return [
        {
            "key": key,
            "name": festivals.name_of(key),
            "kind": kind,
            "date": day,
            "lunar": festivals.lunar_text(day),
            "arrangement": arrangement(day),
        }
        for key, kind in dict(found).items()
    ]


class HolidayCalendar:
    """Which festivals of a day get a greeting, per ``holidays:`` config."""

    def __init__(self, config: HolidaysConfig | None = None):
        self.config = config or HolidaysConfig()

    def fetch(self, day: date) -> list[dict]:
        return [f for f in festivals_on(day) if self.config.greets(f["key"])]


def festival_data(key: str, after: date) -> dict[str, Any]:
    """The ``festival`` variable for festival ``key`` on its first day on or after ``after``:
    exactly what the greeting job passes (with the statutory days-off arrangement, if any).

    KeyError if ``key`` is no festival.
    """
    return dict(_festival_data(key, after))


@lru_cache(maxsize=64)  # the lunar calendar is slow; check asks once per template and place
def _festival_data(key: str, after: date) -> dict[str, Any]:
    if key not in festivals.KEYS:
        raise KeyError(f"unknown festival {key!r}")
    day = festivals.next_date(key, after)
    return next(fest for fest in festivals_on(day) if fest["key"] == key)


# --- the content kind ------------------------------------------------------------------

def _sample(now: datetime, *, festival: str | None = None, **_) -> dict:
    return {"festival": festival_data(festival or DEFAULT_FESTIVAL, now.date())}


def shown_at(data: dict[str, Any], now: datetime) -> datetime:
    """A greeting is shown at 8:00 on its festival's day."""
    fest = data.get("festival")
    day = fest.get("date") if isinstance(fest, dict) else None
    return datetime.combine(day, time(8, 0), tzinfo=now.tzinfo) if isinstance(day, date) else now


HOLIDAY = TemplateKind(
    "holiday", data=("festival",), sample=_sample,
    fields=("festival", "festival.key", "festival.name", "festival.kind", "festival.date",
            "festival.lunar", "festival.arrangement", "festival.arrangement.start",
            "festival.arrangement.end", "festival.arrangement.days",
            "festival.arrangement.workdays"),
    shown_at=shown_at,
)


@register
class Holidays(ContentKind):
    """A greeting on each greeted festival day, once per group and festival day."""

    name = "holidays"
    section = Section("holidays", HolidaysConfig, default=HolidaysConfig)
    templates = (HOLIDAY,)

    def run(self, ctx: RunContext) -> None:
        today = ctx.local_now.date()
        found = HolidayCalendar(ctx.section).fetch(today)
        if not found:
            ctx.nothing(f"no festival today ({today.isoformat()})")
            return
        with ctx.once_only(GREETED) as once:
            for fest in found:
                once(f"{fest['key']}:{fest['date'].isoformat()}", ctx.targets, "holiday",
                     {"festival": fest}, festival=fest["key"], source=f"{ctx.source}:{fest['key']}")
