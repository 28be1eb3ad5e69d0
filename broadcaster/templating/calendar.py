"""The Chinese calendar as residents read it: weekdays, lunar dates, solar terms, festivals.

Lunar dates and solar terms come from ``lunar_python``. Festivals are the ones
the holiday greetings know, each with a stable key used in template file names
(``holiday_<key>.md.j2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal

from lunar_python import Lunar, Solar

WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")

FestivalKind = Literal["traditional", "statutory", "solar_term"]


@dataclass(frozen=True)
class Festival:
    key: str
    name: str
    kind: FestivalKind
    solar: tuple[int, int] | None = None   # (month, day) in the Gregorian calendar
    lunar: tuple[int, int] | None = None   # (month, day) in the lunar calendar
    term: str | None = None                # a solar term's name
    eve: bool = False                      # the last day of the lunar year


FESTIVALS: dict[str, Festival] = {
    f.key: f
    for f in (
        Festival("yuandan", "元旦", "statutory", solar=(1, 1)),
        Festival("chuxi", "除夕", "traditional", eve=True),
        Festival("chunjie", "春节", "traditional", lunar=(1, 1)),
        Festival("yuanxiao", "元宵节", "traditional", lunar=(1, 15)),
        Festival("duanwu", "端午节", "traditional", lunar=(5, 5)),
        Festival("qixi", "七夕节", "traditional", lunar=(7, 7)),
        Festival("zhongqiu", "中秋节", "traditional", lunar=(8, 15)),
        Festival("guoqing", "国庆节", "statutory", solar=(10, 1)),
        Festival("chongyang", "重阳节", "traditional", lunar=(9, 9)),
        Festival("laba", "腊八节", "traditional", lunar=(12, 8)),
        Festival("dongzhi", "冬至", "solar_term", term="冬至"),
    )
}


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


def _is_eve(d: date) -> bool:
    nxt = lunar_date(d + timedelta(days=1))
    return nxt.month == 1 and nxt.day == 1


def festivals_on(value: date | datetime) -> list[Festival]:
    """The festivals that fall on this day, in the order of ``FESTIVALS``."""
    d = as_date(value)
    lunar = lunar_date(d)
    found = []
    for fest in FESTIVALS.values():
        if (
            (fest.solar and fest.solar == (d.month, d.day))
            or (fest.lunar and fest.lunar == (lunar.month, lunar.day))
            or (fest.term and fest.term == lunar.solar_term)
            or (fest.eve and _is_eve(d))
        ):
            found.append(fest)
    return found


def next_festival_date(key: str, after: date) -> date:
    """The first day on or after ``after`` on which festival ``key`` falls."""
    fest = FESTIVALS[key]
    for year in (after.year - 1, after.year, after.year + 1, after.year + 2):
        for d in _dates_in(fest, year):
            if d >= after:
                return d
    raise ValueError(f"no date found for festival {key!r} after {after}")  # pragma: no cover


def _dates_in(fest: Festival, year: int) -> list[date]:
    """The festival's dates around Gregorian ``year`` (sorted)."""
    if fest.solar:
        return [date(year, *fest.solar)]
    if fest.lunar:
        solar = Lunar.fromYmd(year, *fest.lunar).getSolar()
        return [date(solar.getYear(), solar.getMonth(), solar.getDay())]
    if fest.eve:
        new_year = Lunar.fromYmd(year, 1, 1).getSolar()
        return [date(new_year.getYear(), new_year.getMonth(), new_year.getDay()) - timedelta(1)]
    # the table spans the lunar year and its edges; some names appear twice
    # (once in Chinese, once under an upper-case pinyin key), so match by date
    table = Lunar.fromYmd(year, 6, 1).getJieQiTable().values()
    days = {date(s.getYear(), s.getMonth(), s.getDay()) for s in table}
    return sorted(d for d in days if lunar_date(d).solar_term == fest.term)
