"""The one list of festivals and solar terms: greetings, samples and ``today.festivals`` read it.

Each festival has a stable key (written in ``feeds/*.yaml`` ``holidays.greet`` and
in template file names ``holiday_<key>.md.j2``), the Chinese name residents read,
a kind (``traditional``: lunar calendar; ``statutory``: a Gregorian date;
``solar_term``) and the rule that finds its day: a Gregorian date, a lunar date
(a leap month never counts), the last day of the lunar year (除夕) or a solar term.
The 24 solar terms are listed too (key -> name); 冬至 is both a festival and a term.

``on(day)`` lists the festivals of a day in the order of ``FESTIVALS``;
``next_date(key, after)`` finds the next day of a festival or solar term.
Lunar dates and solar terms come from ``lunar_python``, loaded on the first date
looked up (validating ``holidays.greet`` needs only the keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

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
        Festival("laba", "腊八节", "traditional", lunar=(12, 8)),
        Festival("xiaonian", "小年", "traditional", lunar=(12, 23)),
        Festival("chuxi", "除夕", "traditional", eve=True),
        Festival("chunjie", "春节", "traditional", lunar=(1, 1)),
        Festival("yuanxiao", "元宵节", "traditional", lunar=(1, 15)),
        Festival("longtaitou", "龙抬头", "traditional", lunar=(2, 2)),
        Festival("laodong", "劳动节", "statutory", solar=(5, 1)),
        Festival("duanwu", "端午节", "traditional", lunar=(5, 5)),
        Festival("qixi", "七夕节", "traditional", lunar=(7, 7)),
        Festival("zhongyuan", "中元节", "traditional", lunar=(7, 15)),
        Festival("zhongqiu", "中秋节", "traditional", lunar=(8, 15)),
        Festival("guoqing", "国庆节", "statutory", solar=(10, 1)),
        Festival("chongyang", "重阳节", "traditional", lunar=(9, 9)),
        Festival("dongzhi", "冬至", "solar_term", term="冬至"),
    )
}

# The 24 solar terms (key -> Chinese name), in calendar order from 小寒.
SOLAR_TERMS: dict[str, str] = {
    "xiaohan": "小寒", "dahan": "大寒", "lichun": "立春", "yushui": "雨水",
    "jingzhe": "惊蛰", "chunfen": "春分", "qingming": "清明", "guyu": "谷雨",
    "lixia": "立夏", "xiaoman": "小满", "mangzhong": "芒种", "xiazhi": "夏至",
    "xiaoshu": "小暑", "dashu": "大暑", "liqiu": "立秋", "chushu": "处暑",
    "bailu": "白露", "qiufen": "秋分", "hanlu": "寒露", "shuangjiang": "霜降",
    "lidong": "立冬", "xiaoxue": "小雪", "daxue": "大雪", "dongzhi": "冬至",
}

# The festivals proper (not terms), then every solar term: every key a greeting can be for.
KEYS: tuple[str, ...] = (
    *(k for k, f in FESTIVALS.items() if f.kind != "solar_term"), *SOLAR_TERMS,
)

# Greeted when ``holidays.greet`` is not configured.
DEFAULT_GREET: tuple[str, ...] = (
    "yuandan", "chuxi", "chunjie", "yuanxiao", "duanwu", "qixi",
    "zhongqiu", "guoqing", "chongyang", "laba", "dongzhi",
)

_TERMS = {name: key for key, name in SOLAR_TERMS.items()}


def name_of(key: str) -> str:
    """The Chinese name of a festival or solar term; KeyError if it is neither."""
    fest = FESTIVALS.get(key)
    return fest.name if fest else SOLAR_TERMS[key]


def term_key(name: str | None) -> str | None:
    """``清明`` -> ``qingming``; None for a day that starts no solar term."""
    return _TERMS.get(name) if name else None


def _lunar_python():
    import lunar_python  # start-up: see the module docstring

    return lunar_python


@lru_cache(maxsize=2048)
def _lunar(day: date):
    return _lunar_python().Solar.fromYmd(day.year, day.month, day.day).getLunar()


def lunar_month_day(day: date) -> tuple[int, int, str | None]:
    """(lunar month — negative for a leap month, as lunar_python has it —, lunar day,
    the solar term starting that day or None)."""
    lunar = _lunar(day)
    return lunar.getMonth(), lunar.getDay(), lunar.getJieQi() or None


def lunar_text(day: date) -> str:
    """十月初四, 闰六月初二: the lunar date as residents read it."""
    lunar = _lunar(day)
    return f"{lunar.getMonthInChinese()}月{lunar.getDayInChinese()}"


def _is_eve(day: date) -> bool:
    month, dom, _ = lunar_month_day(day + timedelta(days=1))
    return month == 1 and dom == 1


def falls_on(fest: Festival, day: date) -> bool:
    month, dom, term = lunar_month_day(day)
    return bool(
        (fest.solar and fest.solar == (day.month, day.day))
        or (fest.lunar and fest.lunar == (month, dom))
        or (fest.term and fest.term == term)
        or (fest.eve and _is_eve(day))
    )


def on(day: date) -> list[Festival]:
    """The festivals (not the plain solar terms) that fall on ``day``, in list order."""
    return [fest for fest in FESTIVALS.values() if falls_on(fest, day)]


def next_date(key: str, after: date) -> date:
    """The first day on or after ``after`` of festival or solar term ``key``.

    KeyError if ``key`` is neither.
    """
    fest = FESTIVALS.get(key) or Festival(key, SOLAR_TERMS[key], "solar_term",
                                          term=SOLAR_TERMS[key])
    for year in (after.year - 1, after.year, after.year + 1, after.year + 2):
        for d in _dates_in(fest, year):
            if d >= after:
                return d
    raise ValueError(f"no date found for {key!r} after {after}")  # pragma: no cover


def _dates_in(fest: Festival, year: int) -> list[date]:
    """The festival's dates around Gregorian ``year`` (sorted)."""
    Lunar = _lunar_python().Lunar
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
    return sorted(d for d in days if lunar_month_day(d)[2] == fest.term)
