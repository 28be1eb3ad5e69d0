"""Events: YAML items and .ics over loopback (RRULE, TZID), preview and day-before reminders."""

from __future__ import annotations

import textwrap
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from broadcaster.app import App
from broadcaster.queue import outbox
from broadcaster.schedule import scheduler
from broadcaster.sources import SourceError
from broadcaster.sources.events import EventFeed, EventsSource
from tests.conftest import write_groups
from tests.test_news import Loopback

SH = ZoneInfo("Asia/Shanghai")

ICS = "\r\n".join([
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN",
    "BEGIN:VEVENT", "UID:weekly@hlz", "DTSTAMP:20260101T000000Z",
    "DTSTART;TZID=Asia/Shanghai:20261107T090000", "DTEND;TZID=Asia/Shanghai:20261107T113000",
    "RRULE:FREQ=WEEKLY;BYDAY=SA", "SUMMARY:义诊 <script>x</script> @all",
    "LOCATION:党群服务中心", "END:VEVENT",
    "BEGIN:VEVENT", "UID:ny@hlz", "DTSTAMP:20260101T000000Z",
    "DTSTART;TZID=America/New_York:20261125T200000", "SUMMARY:线上家长会", "END:VEVENT",
    "BEGIN:VEVENT", "UID:allday@hlz", "DTSTAMP:20260101T000000Z",
    "DTSTART;VALUE=DATE:20261126", "SUMMARY:社区开放日", "END:VEVENT",
    "END:VCALENDAR", ""]).encode()


def test_ics_rrule_tzid_and_sanitising():
    with Loopback() as srv:
        srv.routes["/cal.ics"] = lambda h: (200, {"Content-Type": "text/calendar"}, ICS)
        src = EventsSource(Path("."), SH)
        feed = EventFeed(id="c", ics=f"{srv.url}/cal.ics", to=["all"])
        evs = src.between(feed, datetime(2026, 11, 22, tzinfo=SH), datetime(2026, 12, 6, tzinfo=SH))
    titles = [(e["title"], e["start"].isoformat()) for e in evs]
    assert titles == [
        ("社区开放日", "2026-11-26T00:00:00+08:00"),
        ("线上家长会", "2026-11-26T09:00:00+08:00"),          # 20:00 New York = 09:00 next day
        ("义诊 ＠all", "2026-11-28T09:00:00+08:00"),           # script dropped, mention defused
        ("义诊 ＠all", "2026-12-05T09:00:00+08:00"),
    ]
    assert evs[0]["all_day"] and not evs[1]["all_day"]
    assert evs[2]["place"] == "党群服务中心"


def test_bad_calendar():
    with Loopback() as srv:
        srv.routes["/bad.ics"] = lambda h: (200, {}, b"BEGIN:VCALENDAR\r\nnot ical at all")
        feed = EventFeed(id="c", ics=f"{srv.url}/bad.ics", to=["all"])
        with pytest.raises(SourceError, match="events c: not a valid iCalendar file"):
            EventsSource(Path("."), SH).between(feed, datetime(2026, 1, 1, tzinfo=SH),
                                                datetime(2026, 2, 1, tzinfo=SH))


@pytest.fixture
def app(root: Path, tmp_path: Path):
    write_groups(root, """
        groups:
          - {id: a, name: 甲, tags: [c:hlz], channel: {type: file, path: out}}
          - {id: b, name: 乙, tags: [c:other], channel: {type: file, path: out}}
    """)
    (root / "feeds" / "events.yaml").write_text(textwrap.dedent("""
        events:
          - id: manual
            to: [c:hlz]
            items:
              - {title: 垃圾分类宣传活动, start: "2026-11-28 09:00", place: 社区广场}
              - {title: 消防演练, start: "2026-12-20 15:00"}
    """), encoding="utf-8")
    (root / "schedules" / "s.yaml").write_text(textwrap.dedent("""
        jobs:
          - {id: weekly, cron: "0 9 * * 1", content: events, to: [all], options: {days_ahead: 7}}
          - {id: remind, cron: "0 18 * * *", content: events, to: [all], options: {reminder: true}}
    """), encoding="utf-8")
    return App(root, tmp_path / "state")


def test_preview_and_reminder_once(app):
    [ann] = scheduler.run_job(app, "weekly", datetime(2026, 11, 23, 9, tzinfo=SH))
    a = outbox.get(app, ann)
    assert [d.group for d in a.deliveries] == ["a"]
    body = a.body(a.deliveries[0])
    assert "垃圾分类宣传活动" in body and "消防演练" not in body
    assert scheduler.run_job(app, "remind", datetime(2026, 11, 26, 18, tzinfo=SH)) == []
    [r] = scheduler.run_job(app, "remind", datetime(2026, 11, 27, 18, tzinfo=SH))
    assert "活动提醒" in outbox.get(app, r).body(outbox.get(app, r).deliveries[0])
    assert scheduler.run_job(app, "remind", datetime(2026, 11, 27, 19, tzinfo=SH)) == []
    # nothing ahead -> nothing posted
    assert scheduler.run_job(app, "weekly", datetime(2027, 3, 1, 9, tzinfo=SH)) == []


# -- hostile calendars: recurrences are bounded ------------------------------------------------

def vevent(uid: str, summary: str, rrule: str | None, start: str = "20261101T090000") -> list[str]:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z",
             f"DTSTART;TZID=Asia/Shanghai:{start}", f"SUMMARY:{summary}"]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    return [*lines, "END:VEVENT"]


def calendar(*events: list[str]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    for ev in events:
        lines += ev
    return "\r\n".join([*lines, "END:VCALENDAR", ""]).encode()


WEEK = (datetime(2026, 11, 23, tzinfo=SH), datetime(2026, 11, 30, tzinfo=SH))


def occurrences(body: bytes, window=WEEK) -> tuple[list[dict], list[str], float]:
    with Loopback() as srv:
        srv.routes["/cal.ics"] = lambda h: (200, {"Content-Type": "text/calendar"}, body)
        src = EventsSource(Path("."), SH)
        feed = EventFeed(id="hlz", ics=f"{srv.url}/cal.ics", to=["all"])
        t0 = time.process_time()
        found = src.between(feed, *window)
        return found, src.warnings, time.process_time() - t0


def test_a_secondly_event_is_skipped_by_name_and_the_rest_of_the_calendar_stays():
    """It took 78 s and 1.79 GB, then the whole events job failed."""
    body = calendar(vevent("flood@x", "每秒活动", "FREQ=SECONDLY", start="20250101T000000"),
                    vevent("weekly@hlz", "义诊", "FREQ=WEEKLY;BYDAY=SA"),
                    vevent("once@hlz", "消防演练", None, start="20261125T150000"))
    found, warnings, cpu = occurrences(body)
    assert [(e["title"], e["start"].day) for e in found] == [("消防演练", 25), ("义诊", 28)]
    [warning] = warnings
    assert warning.startswith("events hlz: event '每秒活动' (UID flood@x) skipped: it repeats secondly")
    assert cpu < 5   # seconds of CPU, against 78 before


def test_an_event_repeating_more_than_the_bound_in_the_window_is_skipped():
    from broadcaster.sources.recurrence import MAX_PER_EVENT

    body = calendar(vevent("hourly@x", "每小时", "FREQ=HOURLY"),            # 168 in the week
                    vevent("daily@x", "晨练", "FREQ=DAILY"),
                    vevent("bounded@x", "限次", "FREQ=HOURLY;COUNT=5", start="20261124T080000"))
    found, warnings, _ = occurrences(body)
    assert {e["title"] for e in found} == {"晨练", "限次"}
    assert len([e for e in found if e["title"] == "限次"]) == 5
    assert warnings == [f"events hlz: event '每小时' (UID hourly@x) skipped: it repeats more than "
                        f"{MAX_PER_EVENT} times between 2026-11-23 00:00 and 2026-11-30 00:00"]


def test_a_modified_occurrence_of_a_skipped_event_goes_with_it():
    moved = ["BEGIN:VEVENT", "UID:flood@x", "DTSTAMP:20260101T000000Z",
             "RECURRENCE-ID;TZID=Asia/Shanghai:20261124T090000",
             "DTSTART;TZID=Asia/Shanghai:20261124T100000", "SUMMARY:每分钟（改）", "END:VEVENT"]
    body = calendar(vevent("flood@x", "每分钟", "FREQ=MINUTELY"), moved,
                    vevent("daily@x", "晨练", "FREQ=DAILY"))
    found, warnings, _ = occurrences(body)
    assert {e["title"] for e in found} == {"晨练"}
    assert len(warnings) == 1 and "每分钟" in warnings[0]


def test_the_calendar_shares_one_budget_of_rule_steps(monkeypatch):
    """Daily rules walked from 1900 cost ~46,000 steps each: the budget stops the walk.
    (The time bounds, tested on their own, are lifted: on a busy machine a walk of 46,000
    steps can pass one second, and then it is time, not steps, that stops it.)"""
    from broadcaster.sources import recurrence

    monkeypatch.setattr(recurrence, "MAX_SECONDS", 60.0)
    monkeypatch.setattr(recurrence, "CALENDAR_SECONDS", 60.0)
    body = calendar(*(vevent(f"old{i}@x", f"老活动{i}", "FREQ=DAILY", start="19000101T090000")
                      for i in range(8)))
    found, warnings, _ = occurrences(body)
    assert warnings and all("steps" in w for w in warnings)
    kept = {e["title"] for e in found}
    assert len(kept) + len(warnings) == 8 and kept   # the first ones fit in the budget


def test_at_most_max_per_window_occurrences_per_calendar():
    from broadcaster.sources.events import MAX_PER_WINDOW

    body = calendar(*(vevent(f"e{i}@x", f"活动{i:02d}", "FREQ=HOURLY;INTERVAL=2") for i in range(13)))
    found, warnings, _ = occurrences(body)        # 13 x 84 = 1,092 in the week
    assert len(found) == MAX_PER_WINDOW
    assert warnings == [f"events hlz: more than {MAX_PER_WINDOW:,} occurrences between 2026-11-23 "
                        f"and 2026-11-30; the first {MAX_PER_WINDOW:,} are used"]
    assert max(e["start"] for e in found) < WEEK[1]


def test_the_events_job_posts_the_rest_and_names_the_skipped_event(root, tmp_path):
    from broadcaster.schedule.jobs import execute
    from broadcaster.schedule.scheduler import find_job, load_jobs

    body = calendar(vevent("flood@x", "每秒活动", "FREQ=SECONDLY", start="20250101T000000"),
                    vevent("weekly@hlz", "义诊", "FREQ=WEEKLY;BYDAY=SA"))
    with Loopback() as srv:
        srv.routes["/cal.ics"] = lambda h: (200, {"Content-Type": "text/calendar"}, body)
        write_groups(root, """
            groups:
              - {id: a, name: 甲, tags: [c:hlz], channel: {type: file, path: out}}
        """)
        (root / "feeds" / "events.yaml").write_text(
            f"events:\n  - {{id: cal, to: [all], ics: '{srv.url}/cal.ics'}}\n", encoding="utf-8")
        (root / "schedules" / "s.yaml").write_text(
            'jobs:\n  - {id: weekly, cron: "0 9 * * 1", content: events, to: [all]}\n', encoding="utf-8")
        app = App(root, tmp_path / "state")
        run = execute(app, find_job(load_jobs(app), "weekly"), datetime(2026, 11, 23, 9, tzinfo=SH))
    [ann] = run.announcements
    a = outbox.get(app, ann)
    assert "义诊" in a.body(a.deliveries[0])
    assert [p for p in run.problems if "每秒活动" in p and "skipped" in p]


def test_a_rule_that_can_never_match_is_bounded_and_skipped(monkeypatch):
    """dateutil searches such a rule to the year 9999 inside one step of its iterator (3 s here,
    more on a loaded machine); the walk is stopped when its time is up and the event skipped, so
    the calendar does not pay for it a second time when it is expanded."""
    from broadcaster.sources import recurrence

    monkeypatch.setattr(recurrence, "MAX_SECONDS", 0.2)
    body = calendar(vevent("never@x", "二月三十日", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"),
                    vevent("weekly@hlz", "义诊", "FREQ=WEEKLY;BYDAY=SA"))
    began = time.monotonic()
    found, warnings, _ = occurrences(body)
    assert time.monotonic() - began < 2.5          # not the 3 s (or more) of the whole search
    assert [e["title"] for e in found] == ["义诊"]
    assert warnings == ["events hlz: event '二月三十日' (UID never@x) skipped: its rule took more "
                        "than 0.2 s to expand"]


def test_a_stop_that_comes_as_the_walk_ends_lands_in_it_never_after(monkeypatch):
    """The narrowest race, made certain: the timer fires while the block is ending. The stop
    is raised within the block (the walk reports it overran) and nothing lands later."""
    from broadcaster.sources import recurrence

    class LateTimer:                     # fires when cancelled, as the block ends
        def __init__(self, seconds, stop):
            self.stop, self.daemon = stop, True

        def start(self):
            pass

        def cancel(self):
            self.stop()

    monkeypatch.setattr(recurrence.threading, "Timer", LateTimer)
    within = later = 0
    for _ in range(50):
        try:
            with recurrence._stopped_after(1.0):
                pass
        except recurrence._Overran:
            within += 1
        try:
            total = 0
            for i in range(1000):        # Python bytecode, where a stray stop would land
                total += i
        except recurrence._Overran:
            later += 1
    assert (within, later) == (50, 0)


def test_after_the_calendar_budget_the_remaining_recurring_events_are_skipped(monkeypatch):
    from broadcaster.sources import recurrence

    monkeypatch.setattr(recurrence, "CALENDAR_SECONDS", 0.0)
    body = calendar(vevent("a@x", "甲", "FREQ=DAILY"), vevent("b@x", "乙", "FREQ=WEEKLY;BYDAY=SA"),
                    vevent("once@hlz", "消防演练", None, start="20261125T150000"))
    found, warnings, _ = occurrences(body)
    assert [e["title"] for e in found] == ["消防演练"]   # events without a rule are never skipped
    assert len(warnings) == 2 and all("took more than 0 s to check" in w for w in warnings)
