"""The office's figures: one function builds them, for ``stats`` and the dashboard alike.

``build(app, since, by=None)`` returns the document ``stats --json`` prints and
the dashboard draws (so the two always agree). The window is whole days in the
default time zone: from the start of the day ``since`` ago up to now, and an
announcement counts in the day it was created.

Deliveries are counted per group and announcement (a message split into parts
is one delivery). ``announcements`` counts what was published: every
announcement in the window except those cancelled before anything was sent.
Latency is how long after its scheduled time a group got a message (``latency``,
seconds) and how long platforms took to answer (``request_ms``), as nearest-rank
median and 95th percentile, within 5 %.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from broadcaster.errors import InputError
from broadcaster.stats import dimensions, history, providers
from broadcaster.store.tally import COUNTED, FAILED, SENT, Tally, quantile
from broadcaster.timeparse import iso

if TYPE_CHECKING:
    from broadcaster.app import App

TOP_GROUPS = 10


def window(now: datetime, since: timedelta) -> tuple[date, datetime]:
    """The first day of the window and the instant it starts (local midnight)."""
    first = (now - since).date()
    return first, datetime.combine(first, time(), now.tzinfo)


def build(app: App, since: timedelta, by: str | None = None) -> dict:
    if by is not None and by not in dimensions.DIMENSIONS:
        raise InputError(f"--by {by!r}: one of {', '.join(dimensions.DIMENSIONS)}")
    now = app.now()
    first, start = window(now, since)
    config = app.groups
    total = Tally()
    days: dict[date, dict] = {}
    for piece in history.pieces(app, first, now.date()):
        if piece.day is not None:
            published = piece.tally.published()
            _add(days, piece.day, {"announcements": published, **total.merge(piece.tally)})
        else:
            total.merge(piece.tally)
            for day, counts in piece.daily.items():
                _add(days, day, counts)
    out = {
        "since": iso(start),
        "until": iso(now),
        "announcements": total.published(),
        "by_source": total.by_source(),
        "deliveries": total.totals(),
        "failures": _failures(total, config),
        "groups_reached": sum(1 for counts in total.groups.values() if counts[SENT]),
        "groups_targeted": len(total.groups),
        "latency": {"median_s": quantile(total.latency_s, 0.5),
                    "p95_s": quantile(total.latency_s, 0.95)},
        "request_ms": {"median": quantile(total.request_ms, 0.5),
                       "p95": quantile(total.request_ms, 0.95)},
        "daily": _daily(days, first, now.date()),
        "top_failed_groups": _top_failed(total, config),
        "inbound": providers.inbound(app, start, now),
        "tickets": providers.tickets(app, start, now, config),
    }
    if by is not None:
        out["by"] = {"dimension": by, "rows": _breakdown(total, config, by)}
    return out


def _add(days: dict[date, dict], day: date, counts: dict[str, int]) -> None:
    """Add one day's figures (a day may come from a month and from the queue)."""
    into = days.get(day)
    if into is None:
        days[day] = dict(counts)
        return
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


def _failures(total: Tally, config) -> list[dict]:
    counts: dict[tuple[str, str], int] = {}
    for gid, reasons in total.failures.items():
        platform = dimensions.platform(config, gid)
        for reason, n in reasons.items():
            counts[(platform, reason)] = counts.get((platform, reason), 0) + n
    return [{"platform": p, "reason": r, "count": n}
            for (p, r), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _daily(days: dict[date, dict], first: date, last: date) -> list[dict]:
    out = []
    day = first
    while day <= last:
        counts = days.get(day) or {"announcements": 0, **dict.fromkeys(COUNTED, 0)}
        out.append({"date": day.isoformat(),
                    **{k: counts[k] for k in ("announcements", "sent", "failed", "expired", "pending")}})
        day += timedelta(days=1)
    return out


def _top_failed(total: Tally, config) -> list[dict]:
    worst = sorted(((counts[FAILED], gid) for gid, counts in total.groups.items() if counts[FAILED]),
                   key=lambda x: (-x[0], x[1]))[:TOP_GROUPS]
    out = []
    for failed, gid in worst:
        group = dimensions.find(config, gid)
        reasons = total.failures.get(gid, {})
        out.append({"group": gid, "name": getattr(group, "name", None),
                    "platform": dimensions.key(group, "platform"), "failed": failed,
                    "reason": max(reasons, key=lambda r: (reasons[r], r)) if reasons else None})
    return out


def _breakdown(total: Tally, config, dimension: str) -> list[dict]:
    rows: dict[str, dict] = {}
    for gid, counts in total.groups.items():
        k = dimensions.key(dimensions.find(config, gid), dimension)
        row = rows.setdefault(k, {"key": k, "groups": 0, "reached": 0,
                                  **dict.fromkeys(("sent", "failed", "expired", "pending"), 0)})
        row["groups"] += 1
        row["reached"] += 1 if counts[SENT] else 0
        for name in ("sent", "failed", "expired", "pending"):
            row[name] += counts[COUNTED.index(name)]
    return sorted(rows.values(), key=lambda r: (-r["sent"] - r["failed"], r["key"]))
