"""The Chinese calendar as residents read it: weekdays, dates, lunar dates, solar terms.

Lunar dates and solar terms come from ``lunar_python``; which festivals a day
holds is the one list in ``broadcaster.sources.festivals``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from lunar_python import Solar

WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")


@dataclass(frozen=True)
class LunarDate:
    month: int          # negative for a leap month, as lunar_python has it
    day: int
    text: str           # 十月初四, 闰六月初二, 正月初一
    year: str           # 丙午年
    zodiac: str         # 马
    solar_term: str | None


def as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def weekday_cn(value: date | datetime, prefix: str = "星期") -> str:
    """星期日 (or 周日 with ``prefix="周"``)."""
    return prefix + WEEKDAYS[as_date(value).weekday()]


def cn_date(value: date | datetime, *, year: bool = True) -> str:
    """2026年11月22日, or 11月22日 without the year."""
    d = as_date(value)
    text = f"{d.month}月{d.day}日"
    return f"{d.year}年{text}" if year else text


@lru_cache(maxsize=2048)
def lunar_date(d: date) -> LunarDate:
    lunar = Solar.fromYmd(d.year, d.month, d.day).getLunar()
    return LunarDate(
        month=lunar.getMonth(),
        day=lunar.getDay(),
        text=f"{lunar.getMonthInChinese()}月{lunar.getDayInChinese()}",
        year=f"{lunar.getYearInGanZhi()}年",
        zodiac=lunar.getYearShengXiao(),
        solar_term=lunar.getJieQi() or None,
    )
