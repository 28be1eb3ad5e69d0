"""Where the delivery figures come from: one tally per day of the window.

An announcement belongs to the day it was created (the date in its id, in the
default time zone). Finished announcements are read from the history index
(``broadcaster.store.history``: a small file per day, checked against the
archive); those still in the queue are tallied from their files.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

from broadcaster.queue import outbox
from broadcaster.store.history import id_day
from broadcaster.store.tally import Tally

if TYPE_CHECKING:
    from broadcaster.app import App


def daily(app: App, first: date, last: date) -> Iterator[tuple[date, Tally]]:
    """The tallies of the days from ``first`` to ``last`` (inclusive) that had announcements,
    one at a time (180 days of them need not be in memory together)."""
    live: dict[date, Tally] = {}
    for ann in outbox.active(app):
        day = id_day(ann.id)
        if first <= day <= last:
            live.setdefault(day, Tally()).add(ann.meta.to_json(),
                                              [d.to_json() for d in ann.deliveries])
    for day, tally in app.store.history.check(first, last):
        if day in live:
            tally.merge(live.pop(day))
        yield day, tally
    yield from sorted(live.items())
