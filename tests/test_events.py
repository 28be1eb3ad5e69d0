"""Events: YAML items and .ics over loopback (RRULE, TZID), preview and day-before reminders."""

from __future__ import annotations

import textwrap
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
