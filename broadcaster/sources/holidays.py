"""Holidays: traditional festivals and solar terms (lunar_python), statutory days off (holidays CN).

Declares:
- config: ``feeds/*.yaml`` ``holidays:`` — ``greet`` (keys of the one festival list,
  festivals.py; default 元旦, 除夕, 春节, 元宵节, 端午节, 七夕节, 中秋节, 国庆节,
  重阳节, 腊八节, 冬至) and ``solar_terms`` (greet all 24 terms);
- no network: both calendars are computed locally;
- state (kept by broadcaster.schedule.jobs): ``holiday-greetings`` — which groups were
  greeted for which festival day, so a job running twice greets once.

A festival is ``{key, name, kind, date, lunar, arrangement}``: ``kind`` is
``traditional`` (lunar calendar), ``statutory`` (元旦, 劳动节, 国庆节) or
``solar_term``; ``arrangement`` is, when the day falls in a statutory break, the
break (``start``, ``end``, ``days``) and its make-up workdays (``workdays``), else None.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache

import holidays as pyholidays
from lunar_python import Solar

from broadcaster.config.feeds import HolidaysConfig
from broadcaster.sources import festivals

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")   # in 休息日（由 2026-02-14 调休）


@lru_cache(maxsize=8)
def _statutory(year: int) -> pyholidays.HolidayBase:
    return pyholidays.China(years=range(year - 1, year + 2), language="zh_CN")


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


def lunar_text(day: date) -> str:
    lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
    return f"{lunar.getMonthInChinese()}月{lunar.getDayInChinese()}"


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
            "lunar": lunar_text(day),
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
