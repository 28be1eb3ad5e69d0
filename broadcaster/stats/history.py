"""Where the delivery figures come from: one tally per day of the window.

An announcement belongs to the day (in the default time zone) it was scheduled
for. ``daily(app, first, last)`` returns the tallies of the days from ``first``
to ``last`` (inclusive) that had any, reading the queue and the archive months
those days can be in.
"""

from __future__ import annotations

from datetime import date, datetime, time

from broadcaster.queue import outbox
from broadcaster.stats.tally import Tally


def day_of(meta: dict, tz) -> date:
    return datetime.fromisoformat(meta["scheduled_for"]).astimezone(tz).date()


def daily(app, first: date, last: date) -> dict[date, Tally]:
    tz = app.tz
    out: dict[date, Tally] = {}
    since = datetime.combine(first, time(), tz)
    for ann in outbox.active(app) + outbox.archived(app, since):
        day = day_of(ann.meta, tz)
        if first <= day <= last:
            out.setdefault(day, Tally()).add(ann.meta, ann.deliveries)
    return out
