"""Where the delivery figures come from: the tallies of the window's days.

An announcement belongs to the day it was created (the date in its id, in the
default time zone). Finished announcements are read from the history index
(``broadcaster.store.history``: a small document per day and one per past
month, checked against the archive); those still in the queue are tallied from
their files.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

from broadcaster.queue import outbox
from broadcaster.store.history import Piece, id_day
from broadcaster.store.tally import Tally

if TYPE_CHECKING:
    from broadcaster.app import App


def pieces(app: App, first: date, last: date) -> Iterator[Piece]:
    """The window's tallies from ``first`` to ``last`` (inclusive), one piece at a time (180
    days of them need not be in memory together): whole past months as one piece each
    (``History.window``), the other days one each; announcements still in the queue are
    tallied from their files, one piece per day."""
    live: dict[date, Tally] = {}
    for ann in outbox.active(app):
        day = id_day(ann.id)
        if first <= day <= last:
            live.setdefault(day, Tally()).add(ann.meta.to_json(),
                                              [d.to_json() for d in ann.deliveries])
    for piece in app.store.history.window(first, last, app.now().date()):
        if piece.day is not None and piece.day in live:
            piece.tally.merge(live.pop(piece.day))
        yield piece
    for day, tally in sorted(live.items()):
        yield Piece(tally, day=day)
