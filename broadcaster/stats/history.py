"""Where the delivery figures come from: one tally per day of the window.

An announcement belongs to the day it was created (the date in its id, in the
default time zone). Finished announcements are read from the history index
(``broadcaster.store.history``: a small file per day, checked against the
archive); those still in the queue are tallied from their files.
"""

from __future__ import annotations

from datetime import date

from broadcaster.queue import outbox
from broadcaster.store.history import id_day
from broadcaster.store.tally import Tally


def daily(app, first: date, last: date) -> dict[date, Tally]:
    """The tallies of the days from ``first`` to ``last`` (inclusive) that had announcements."""
    out = app.store.history.check(first, last)
    for ann in outbox.active(app):
        day = id_day(ann.id)
        if first <= day <= last:
            out.setdefault(day, Tally()).add(ann.meta, ann.deliveries)
    return out
