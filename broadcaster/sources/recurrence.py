"""Bounds on calendar recurrences, checked before a calendar is expanded.

A calendar is outside input: one ``RRULE:FREQ=SECONDLY`` event expanded over
a week is 604,800 occurrences (it took 78 s and 1.79 GB before these bounds).
``bound_recurrences(calendar, start, end, tz)`` walks each recurring event's
rules lazily (dateutil, the engine recurring_ical_events uses) and removes
from the calendar — with the occurrences that modify it, same UID — every
event that:

- repeats by the second or the minute (``FREQ=SECONDLY``/``MINUTELY``): no
  community event does, and expanding such a rule costs without bound;
- has more than ``MAX_PER_EVENT`` occurrences starting in ``[start, end)``;
- needs more than what is left of the calendar's ``MAX_STEPS`` rule steps
  (shared by all its events) to get from its DTSTART past ``end``, or walks
  for more than ``MAX_SECONDS`` without reaching it. A rule that can never
  match (``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30``) makes dateutil search to the
  year 9999 inside one step of its iterator — 3 s, 5 s when hourly — so the
  walk is stopped from outside: ``_stopped_after`` raises in the walking
  thread when its time is up (``PyThreadState_SetAsyncExc``, the means
  ``func_timeout`` and ``stopit`` use; dateutil's loop is pure Python, so it
  is interrupted at once);
- comes after the calendar has spent ``CALENDAR_SECONDS`` on such walks.

It returns one warning per event removed, naming the event (its summary
and UID); the rest of the calendar is expanded and posted as usual.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

MAX_PER_EVENT = 100          # occurrences of one event in the window (a week: 14 a day)
MAX_STEPS = 200_000          # rule steps for a whole calendar (daily since 1970: 20,500)
MAX_SECONDS = 1.0            # walking one event's rules
CALENDAR_SECONDS = 4.0       # walking all of them
OVER_FREQUENT = ("SECONDLY", "MINUTELY")

_UNTIL = re.compile(r"UNTIL=(\d{8})(?:T(\d{6})(Z?))?", re.IGNORECASE)


def bound_recurrences(calendar, start: datetime, end: datetime, tz: ZoneInfo) -> list[str]:
    """Remove the events whose recurrences are over the bounds; a warning for each."""
    budget = _Budget(MAX_STEPS, time.monotonic() + CALENDAR_SECONDS)
    refused: dict[str, str] = {}   # uid -> warning
    for comp in calendar.walk("VEVENT"):
        rules = comp.get("RRULE")
        if rules is None:
            continue
        uid = str(comp.get("UID", ""))
        if uid in refused or comp.get("RECURRENCE-ID") is not None:
            continue
        if time.monotonic() > budget.deadline:
            why = f"the calendar's recurring events took more than {CALENDAR_SECONDS:g} s to check"
        else:
            why = _over_bounds(comp, rules if isinstance(rules, list) else [rules], start, end, tz,
                               budget)
        if why:
            name = str(comp.get("SUMMARY", "")).strip()[:80] or "(no title)"
            refused[uid] = f"event {name!r} (UID {uid or '-'}) skipped: {why}"
    if refused:
        _remove(calendar, set(refused))
    return list(refused.values())


@dataclass
class _Budget:
    steps: int          # rule steps left for the calendar
    deadline: float     # time.monotonic() by which the checks must be done


def _over_bounds(comp, rules: list, start: datetime, end: datetime, tz: ZoneInfo,
                 budget: _Budget) -> str | None:
    from dateutil.rrule import rrulestr  # start-up time: loaded when first used

    first = comp.decoded("DTSTART", None)
    if first is None:
        return None
    if not isinstance(first, datetime):
        first = datetime.combine(first, datetime.min.time())
    zone = first.tzinfo or tz
    dtstart = first.replace(tzinfo=None)                      # wall time in its own zone
    lo = start.astimezone(zone).replace(tzinfo=None)
    hi = end.astimezone(zone).replace(tzinfo=None)
    for recur in rules:
        freq = str((recur.get("FREQ") or [""])[0]).upper()
        if freq in OVER_FREQUENT:
            return f"it repeats {freq.lower()} (RRULE FREQ={freq}); events may repeat hourly at most"
        text = _naive_until(recur.to_ical().decode("ascii", "replace"), zone)
        try:
            rule = rrulestr(text, dtstart=dtstart, cache=False)
        except (ValueError, TypeError):
            continue   # recurring_ical_events reports what it cannot read
        why = _walk(rule, lo, hi, budget)
        if why:
            return why
    return None


def _walk(rule, lo: datetime, hi: datetime, budget: _Budget) -> str | None:
    """Count ``rule``'s occurrences up to ``hi``; why it is over the bounds, or None."""
    seen = 0
    try:
        with _stopped_after(MAX_SECONDS):
            for when in rule:
                budget.steps -= 1
                if when >= hi:
                    return None
                if when >= lo:
                    seen += 1
                    if seen > MAX_PER_EVENT:
                        return (f"it repeats more than {MAX_PER_EVENT} times between "
                                f"{lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M}")
                if budget.steps < 0:
                    return (f"the calendar's recurring events need more than {MAX_STEPS:,} steps "
                            "to reach the dates wanted")
    except _Overran:
        return f"its rule took more than {MAX_SECONDS:g} s to expand"
    return None


class _Overran(Exception):
    """Raised in a walking thread whose time is up."""


@contextmanager
def _stopped_after(seconds: float) -> Iterator[None]:
    """Raise ``_Overran`` in this thread if the block is still running after ``seconds``.

    The exception is delivered between two bytecodes of the block (pure Python only); a
    pending one is withdrawn when the block ends first, so it never lands outside the block.
    """
    import ctypes  # start-up time: loaded when a calendar is first checked

    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    me = ctypes.c_ulong(threading.get_ident())
    lock = threading.Lock()
    running = True

    def stop() -> None:
        with lock:
            if running:
                set_async(me, ctypes.py_object(_Overran))

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            running = False
            set_async(me, None)      # withdraw one raised too late to land in the block


def _naive_until(rule: str, zone: Any) -> str:
    """``UNTIL`` as wall time in ``zone``, as the naive DTSTART it is walked with needs."""
    def naive(m: re.Match) -> str:
        day, clock, utc = m.group(1), m.group(2), m.group(3)
        if clock is None:
            return f"UNTIL={day}"
        when = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
        if utc:
            when = when.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
        return f"UNTIL={when:%Y%m%dT%H%M%S}"

    return _UNTIL.sub(naive, rule)


def _remove(calendar, uids: set[str]) -> None:
    """Drop the events with these UIDs (their modified occurrences too), wherever they are."""
    for comp in calendar.walk():
        comp.subcomponents[:] = [
            sub for sub in comp.subcomponents
            if not (sub.name == "VEVENT" and str(sub.get("UID", "")) in uids)
        ]
