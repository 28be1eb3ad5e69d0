"""Deadlines: working days on the statutory calendar, or plain hours and days.

- ``N workdays``: the same clock time N working days later. A working day is a
  weekday that is not a statutory day off, or a weekend day the State Council
  made a working day (调休上班, e.g. Saturday 2026-02-14 before 春节). The
  calendar is lunar_python's ``HolidayUtil``; for a year it does not know yet,
  Monday to Friday are working days.
- ``N h`` / ``N d``: calendar time (urgent cases count hours).

The reminder goes at ``REMINDER_AT`` (80 %) of the time from the clock's start
to the deadline.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from broadcaster.config.tickets import Deadline

REMINDER_AT = 0.8


@lru_cache(maxsize=2048)
def is_workday(day: date) -> bool:
    from lunar_python.util import HolidayUtil  # start-up time: loaded when first used

    holiday = HolidayUtil.getHoliday(day.year, day.month, day.day)
    if holiday is not None:
        return bool(holiday.isWork())
    return day.weekday() < 5


def add_workdays(start: datetime, n: int) -> datetime:
    """The same clock time as ``start``, ``n`` working days after ``start``'s day."""
    day = start.date()
    left = n
    while left > 0:
        day += timedelta(days=1)
        if is_workday(day):
            left -= 1
    return datetime.combine(day, start.timetz().replace(tzinfo=None), tzinfo=start.tzinfo)


def deadline_after(deadline: Deadline, start: datetime) -> datetime:
    if deadline.unit == "workdays":
        return add_workdays(start, deadline.amount)
    span = timedelta(hours=deadline.amount) if deadline.unit == "hours" \
        else timedelta(days=deadline.amount)
    return (start.astimezone(UTC) + span).astimezone(start.tzinfo)


def reminder_at(start: datetime, deadline: datetime) -> datetime:
    """``REMINDER_AT`` of the way from ``start`` to ``deadline``."""
    begin = start.astimezone(UTC)
    return (begin + (deadline.astimezone(UTC) - begin) * REMINDER_AT).astimezone(start.tzinfo)
