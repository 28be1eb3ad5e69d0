"""The figures other parts keep: resident messages and answers, and work orders.

One function per source, each returning the same shape whether or not that
source exists in this installation or has any data yet (zeros then):

- ``inbound(app, start, end)``: resident messages received, questions answered
  and missed, the most-asked misses. Read from ``broadcaster.inbound``'s kept
  messages (``broadcaster.inbound.history.figures``) once that package exists.
- ``tickets(app, start, end, config)``: work orders opened and resolved in the
  window, overdue now, by status, median handling time, and all of it by grid.
  Read from ``broadcaster.tickets.store``.

Nothing here creates files: a root without tickets or messages reads as zeros.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
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


def _months(start: datetime, end: datetime) -> list[str]:
    out, cur = [], start.date().replace(day=1)
    while cur <= end.date():
        out.append(f"{cur:%Y-%m}")
        cur = (cur + timedelta(days=32)).replace(day=1)
    return out


def _load_tickets(app: App, start: datetime, end: datetime) -> list | None:
    try:
        store = app.store.tickets()
    except ImportError:
        return None
    if not store.kept():
        return []
    found = {t.id: t for t in store.archived_tickets(_months(start, end))}
    found.update((t.id, t) for t in store.open_tickets())  # the open copy wins
    return list(found.values())


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 1)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def tickets(app: App, start: datetime, end: datetime, config) -> dict:
    found = _load_tickets(app, start, end)
    if not found:
        return empty_tickets()
    rows: dict[str, dict] = {}
    handling: dict[str, list[float]] = {}
    by_status: dict[str, int] = {}
    totals = {"opened": 0, "resolved": 0, "overdue": 0}
    all_hours: list[float] = []
    for t in found:
        group = dimensions.find(config, t.group)
        grid = dimensions.key(group, "grid")
        name = group.name if group is not None and grid == group.id else grid
        row = rows.setdefault(grid, {"grid": grid, "name": name, "opened": 0, "resolved": 0,
                                     "overdue": 0})
        if start <= t.created_at <= end:
            row["opened"] += 1
            totals["opened"] += 1
            by_status[t.status] = by_status.get(t.status, 0) + 1
        resolved_at = t.changed_at("resolved")
        if resolved_at is not None and start <= resolved_at <= end:
            row["resolved"] += 1
            totals["resolved"] += 1
            hours = _hours(resolved_at - t.created_at)
            handling.setdefault(grid, []).append(hours)
            all_hours.append(hours)
        if t.overdue(end):
            row["overdue"] += 1
            totals["overdue"] += 1
    for grid, row in rows.items():
        row["median_handling_hours"] = _median(handling.get(grid, []))
    by_grid = sorted((r for r in rows.values() if r["opened"] or r["resolved"] or r["overdue"]),
                     key=lambda r: (-r["overdue"], -r["opened"], r["grid"]))
    return {**totals, "by_grid": by_grid, "by_status": dict(sorted(by_status.items())),
            "median_handling_hours": _median(all_hours)}
