"""The figures other parts keep: resident messages and answers, and work orders.

One function per source, each returning the same shape whether or not that
source exists in this installation or has any data yet (zeros then):

- ``inbound(app, start, end)``: resident messages received, questions answered
  and missed, the most-asked misses. Read from ``broadcaster.inbound``'s kept
  messages (``broadcaster.inbound.history.figures``) once that package exists.
- ``tickets(app, start, end, config)``: work orders opened and resolved in the
  window, overdue now, by status, median handling time, and all of it by grid.
  Counted by the ticket store (``TicketStore.figures``: on PostgreSQL, one query).

Nothing here creates files: a root without tickets or messages reads as zeros.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from broadcaster.stats import dimensions

if TYPE_CHECKING:
    from broadcaster.app import App

TOP_MISSES = 10


def empty_inbound() -> dict:
    return {"messages": 0, "answered": 0, "missed": 0, "top_misses": []}


def empty_tickets() -> dict:
    return {"opened": 0, "resolved": 0, "overdue": 0, "by_grid": [], "by_status": {},
            "median_handling_hours": None}


def inbound(app: App, start: datetime, end: datetime) -> dict:
    try:
        from broadcaster.inbound import history  # start-up time: loaded when first used
    except ImportError:
        return empty_inbound()
    out = {**empty_inbound(), **history.figures(app, start, end)}
    out["top_misses"] = list(out["top_misses"])[:TOP_MISSES]
    return out


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 1)


def tickets(app: App, start: datetime, end: datetime, config) -> dict:
    """The store's counts (``TicketStore.figures``), with the grids' names: a grid that is
    a group (``kind:grid``) by that group's name."""
    try:
        store = app.store.tickets()
    except ImportError:
        return empty_tickets()
    if not store.kept():
        return empty_tickets()
    grids = {g.id: dimensions.key(g, "grid") for g in config.groups}
    found = store.figures(start, end, grids, dimensions.UNKNOWN)
    by_grid = []
    for grid, counts in found.by_grid.items():
        if counts.opened or counts.resolved or counts.overdue:
            group = config.by_id.get(grid)
            by_grid.append({"grid": grid, "name": group.name if group is not None else grid,
                            **_counts(counts)})
    by_grid.sort(key=lambda r: (-r["overdue"], -r["opened"], r["grid"]))
    total = _counts(found.total)
    hours = total.pop("median_handling_hours")
    return {**total, "by_grid": by_grid,
            "by_status": {k: n for k, n in sorted(found.by_status.items()) if n},
            "median_handling_hours": hours}


def _counts(counts) -> dict:
    return {"opened": counts.opened, "resolved": counts.resolved, "overdue": counts.overdue,
            "median_handling_hours": _hours(counts.handling_s)}
