"""Events: staff-written ``items`` and iCalendar feeds (RRULE and TZID honoured).

Declares:
- config: ``feeds/*.yaml`` ``events:`` entries (``id``, ``to`` selectors, and either
  ``ics`` — http(s), ``file:`` or a path — or ``items``); see config/feeds.py;
- requests: one GET per calendar per run (timeouts, size cap ``MAX_BYTES``);
- times: ``items`` times are in the default timezone; calendar times keep their
  TZID (floating times are read in the default timezone); recurrences are
  expanded with recurring_ical_events;
- state (kept by broadcaster.schedule.jobs): ``event-reminders`` — which groups were
  reminded of which occurrence.

``EventsSource.between(feed, start, end)`` returns occurrences overlapping
``[start, end)``: dicts with ``uid``, ``feed_id``, ``title``, ``start``, ``end``,
``place``, ``description`` (inert Markdown) and ``all_day``, sorted by start.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from broadcaster.config.feeds import EventFeed, EventItem
from broadcaster.sources import Source, SourceError, content_hash, safe_text

TITLE_LIMIT = 100
PLACE_LIMIT = 80
DESCRIPTION_LIMIT = 300


def _aware(value: date | datetime, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    return datetime.combine(value, time(), tz)


def _event(feed_id: str, uid: str, title: str, start, end, place, description, tz) -> dict:
    all_day = not isinstance(start, datetime)
    begin = _aware(start, tz)
    finish = _aware(end, tz) if end is not None else None
    return {
        "uid": uid,
        "feed_id": feed_id,
        "title": title,
        "start": begin,
        "end": finish,
        "place": place or None,
        "description": description or None,
        "all_day": all_day,
    }


def _overlaps(ev: dict, start: datetime, end: datetime) -> bool:
    last = ev["end"] or (ev["start"] + timedelta(days=1) if ev["all_day"] else ev["start"])
    return ev["start"] < end and (last > start or ev["start"] >= start)


class EventsSource(Source):
    """``items`` and calendars; naive and all-day times are read in ``tz``."""

    def __init__(self, root: Path, tz: ZoneInfo, **kw):
        super().__init__(root, **kw)
        self.tz = tz

    def between(self, feed: EventFeed, start: datetime, end: datetime) -> list[dict]:
        """Occurrences of ``feed``'s events overlapping ``[start, end)``, by start time."""
        if feed.items is not None:
            found = [self._item(feed, item) for item in feed.items]
        else:
            found = self._calendar(feed, start, end)
        found = [ev for ev in found if _overlaps(ev, start, end)]
        return sorted(found, key=lambda ev: (ev["start"], ev["title"]))

    def _item(self, feed: EventFeed, item: EventItem) -> dict:
        uid = content_hash(feed.id, item.title, str(item.start))
        return _event(
            feed.id, uid,
            safe_text(item.title, limit=TITLE_LIMIT, html_input=False),
            item.start, item.end,
            safe_text(item.place, limit=PLACE_LIMIT, html_input=False),
            safe_text(item.description, limit=DESCRIPTION_LIMIT, html_input=False),
            self.tz,
        )

    def _calendar(self, feed: EventFeed, start: datetime, end: datetime) -> list[dict]:
        got = self.get(feed.ics)
        try:
            calendar = icalendar.Calendar.from_ical(got.body)
            occurrences = recurring_ical_events.of(calendar).between(start, end)
        except Exception as exc:  # icalendar raises ValueError and friends on bad input
            raise SourceError(f"events {feed.id}: not a valid iCalendar file: {exc}") from None
        out = []
        for comp in occurrences:
            if comp.name != "VEVENT" or str(comp.get("STATUS", "")).upper() == "CANCELLED":
                continue
            dtstart = comp.get("DTSTART")
            if dtstart is None:
                continue
            begin = dtstart.dt
            dtend = comp.get("DTEND")
            finish = dtend.dt if dtend is not None else None
            if finish is None and comp.get("DURATION") is not None:
                finish = begin + comp.get("DURATION").dt
            title = safe_text(str(comp.get("SUMMARY", "")), limit=TITLE_LIMIT)
            if not title:
                continue
            uid = f"{comp.get('UID', '')}@{_aware(begin, self.tz).isoformat()}"
            out.append(_event(
                feed.id, content_hash(feed.id, uid), title, begin, finish,
                safe_text(str(comp.get("LOCATION", "")), limit=PLACE_LIMIT),
                safe_text(str(comp.get("DESCRIPTION", "")), limit=DESCRIPTION_LIMIT),
                self.tz,
            ))
        return out


def for_template(ev: dict) -> dict:
    """The ``events`` entry templates receive (see templates/README.md)."""
    return {k: ev[k] for k in ("title", "start", "end", "place", "description", "all_day")}
