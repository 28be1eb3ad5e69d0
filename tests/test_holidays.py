"""Holiday greetings through real dates (time-machine): once per festival per group."""

from __future__ import annotations

import textwrap
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from broadcaster.app import App
from broadcaster.queue import outbox
from broadcaster.schedule import scheduler
from broadcaster.sources.holidays import HolidayCalendar, HolidaysConfig, arrangement, day_info, festivals_on
from tests.conftest import write_groups

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("day", "key", "kind"), [
    (date(2026, 2, 16), "chuxi", "traditional"),
    (date(2026, 2, 17), "chunjie", "traditional"),
    (date(2026, 9, 25), "zhongqiu", "traditional"),
    (date(2026, 10, 18), "chongyang", "traditional"),
    (date(2026, 12, 22), "dongzhi", "solar_term"),
    (date(2026, 10, 1), "guoqing", "statutory"),
    (date(2026, 1, 26), "laba", "traditional"),
])
def test_greeting_days(day, key, kind):
    [fest] = HolidayCalendar().fetch(day)
    assert (fest["key"], fest["kind"], fest["date"]) == (key, kind, day)


def test_solar_terms_optional_and_no_festival_days():
    assert HolidayCalendar().fetch(date(2026, 4, 5)) == []                # 清明 not by default
    assert [f["key"] for f in festivals_on(date(2026, 4, 5))] == ["qingming"]
    cal = HolidayCalendar(HolidaysConfig(greet=[], solar_terms=True))
    assert [f["name"] for f in cal.fetch(date(2026, 2, 4))] == ["立春"]
    assert HolidayCalendar().fetch(date(2026, 11, 24)) == []


@pytest.mark.parametrize(("day", "name"), [
    (date(2026, 5, 1), "劳动节"), (date(2026, 2, 10), "小年"), (date(2027, 3, 9), "龙抬头"),
    (date(2026, 8, 27), "中元节"), (date(2026, 12, 22), "冬至"), (date(2026, 2, 17), "春节"),
])
def test_one_festival_list_for_greetings_and_today(day, name):
    """``today.festivals`` and the holiday source read the same list, so they agree."""
    from broadcaster.templating.context import today

    assert today(day)["festivals"] == [name]
    assert [f["name"] for f in festivals_on(day)] == [name]


def test_statutory_break_and_makeup_workdays():
    spring = arrangement(date(2026, 2, 17))
    assert (spring["start"], spring["end"], spring["days"]) == (date(2026, 2, 15),
                                                                date(2026, 2, 23), 9)
    assert spring["workdays"] == [date(2026, 2, 14), date(2026, 2, 28)]
    assert arrangement(date(2026, 10, 18)) is None
    assert day_info(date(2026, 2, 14))["makeup_workday"] is True


@pytest.fixture
def app(root: Path, tmp_path: Path):
    write_groups(root, """
        groups:
          - {id: a, name: 甲, tags: [x], channel: {type: file, path: out}}
          - {id: b, name: 乙, tags: [x], channel: {type: file, path: out}}
    """)
    (root / "schedules" / "s.yaml").write_text(textwrap.dedent("""
        jobs:
          - {id: greet, cron: "0 8 * * *", content: holidays, to: [all]}
          - {id: greet-again, cron: "0 9 * * *", content: holidays, to: [id:a]}
    """), encoding="utf-8")
    return App(root, tmp_path / "state")


@pytest.mark.parametrize(("day", "word"), [
    ((2026, 2, 16), "除夕"), ((2026, 2, 17), "春节"), ((2026, 9, 25), "中秋"),
    ((2026, 10, 18), "重阳"), ((2026, 12, 22), "冬至"),
])
def test_time_travel_greets_once(app, day, word):
    with time_machine.travel(datetime(*day, 7, 59, 30, tzinfo=SH), tick=False):
        assert scheduler.fire_due(app) == []                    # first sight of the jobs
    with time_machine.travel(datetime(*day, 8, 0, 5, tzinfo=SH), tick=False):
        assert scheduler.fire_due(app) == ["greet"]
    with time_machine.travel(datetime(*day, 9, 0, 5, tzinfo=SH), tick=False):
        assert scheduler.fire_due(app) == ["greet-again"]       # fires, greets nobody twice
        assert scheduler.run_job(app, "greet") == []
    [ann] = outbox.active(app)
    assert sorted(d.group for d in ann.deliveries) == ["a", "b"]
    assert word in ann.body(ann.deliveries[0])


def test_ordinary_day_posts_nothing(app):
    with time_machine.travel(datetime(2026, 11, 24, 8, 0, 5, tzinfo=SH), tick=False):
        assert scheduler.run_job(app, "greet") == []
