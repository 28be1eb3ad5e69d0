"""Deadlines on the statutory calendar: 春节 and 国庆 breaks, 调休 make-up workdays, hours."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from broadcaster.config.tickets import Deadline
from broadcaster.tickets.deadlines import add_workdays, deadline_after, is_workday, reminder_at

TZ = ZoneInfo("Asia/Shanghai")


def at(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


@pytest.mark.parametrize("day, work", [
    (date(2026, 2, 13), True),     # Friday before 春节
    (date(2026, 2, 14), True),     # Saturday, a 春节 make-up workday (调休)
    (date(2026, 2, 15), False),    # 春节 break ...
    (date(2026, 2, 17), False),    # 正月初一, a Tuesday
    (date(2026, 2, 23), False),    # ... to Monday 23rd
    (date(2026, 2, 24), True),
    (date(2026, 2, 28), True),     # Saturday, the other 春节 make-up workday
    (date(2026, 3, 1), False),     # an ordinary Sunday
    (date(2026, 9, 20), True),     # Sunday, a 国庆 make-up workday
    (date(2026, 10, 1), False),    # 国庆 break
    (date(2026, 10, 7), False),
    (date(2026, 10, 8), True),
    (date(2026, 10, 10), True),    # Saturday, a 国庆 make-up workday
    (date(2026, 10, 11), False),
    (date(2025, 10, 11), True),    # 2025's 国庆中秋 make-up Saturday
])
def test_the_statutory_calendar(day, work):
    assert is_workday(day) is work


@pytest.mark.parametrize("start, n, expected", [
    (at(2026, 2, 13, 15, 30), 1, at(2026, 2, 14, 15, 30)),   # into the make-up Saturday
    (at(2026, 2, 13, 15, 30), 2, at(2026, 2, 24, 15, 30)),   # over the whole 春节 break
    (at(2026, 2, 14, 9, 0), 1, at(2026, 2, 24, 9, 0)),       # opened on the make-up day
    (at(2026, 2, 16, 9, 0), 1, at(2026, 2, 24, 9, 0)),       # opened during the break
    (at(2026, 2, 26, 9, 0), 2, at(2026, 2, 28, 9, 0)),       # Thu + 2 = the make-up Saturday
    (at(2026, 9, 30, 17, 0), 1, at(2026, 10, 8, 17, 0)),     # over 国庆
    (at(2026, 10, 9, 11, 0), 1, at(2026, 10, 10, 11, 0)),    # Friday + 1 = make-up Saturday
    (at(2026, 10, 9, 11, 0), 2, at(2026, 10, 12, 11, 0)),
    (at(2026, 11, 20, 16, 0), 1, at(2026, 11, 23, 16, 0)),   # an ordinary weekend
    (at(2026, 11, 23, 8, 15), 5, at(2026, 11, 30, 8, 15)),
])
def test_workdays_keep_the_clock_time(start, n, expected):
    got = add_workdays(start, n)
    assert got == expected and got.utcoffset() == expected.utcoffset()


def test_hours_and_days_are_calendar_time():
    assert deadline_after(Deadline.parse("4h"), at(2026, 2, 16, 22, 30)) == at(2026, 2, 17, 2, 30)
    assert deadline_after(Deadline.parse("2 d"), at(2026, 9, 30, 9)) == at(2026, 10, 2, 9)
    assert deadline_after(Deadline.parse("2 workdays"), at(2026, 9, 30, 9)) == at(2026, 10, 9, 9)


def test_the_reminder_goes_at_80_percent_of_the_time():
    assert reminder_at(at(2026, 11, 23, 10), at(2026, 11, 23, 20)) == at(2026, 11, 23, 18)
    start = at(2026, 2, 13, 10)
    deadline = add_workdays(start, 2)                            # 24th 10:00: 11 days away
    assert reminder_at(start, deadline) == datetime(2026, 2, 22, 5, 12, tzinfo=TZ)  # +211.2 h
