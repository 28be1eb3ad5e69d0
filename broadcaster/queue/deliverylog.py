"""The delivery log: what happened to every delivery, read from the queue and the archive."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.errors import InputError
from broadcaster.queue import outbox
from broadcaster.queue.outbox import DELIVERY_STATES, Announcement, Delivery
from broadcaster.store.history import FAILED_STATES, log_row, text_day
from broadcaster.timeparse import iso

if TYPE_CHECKING:
    from broadcaster.app import App

DEFAULT_SINCE_DAYS = 7


def delivery_view(d: Delivery) -> dict:
    return {
        "group": d.group,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "sent_at": iso(d.sent_at),
        "updated_at": iso(d.updated_at),
        "next_attempt_at": iso(d.next_attempt_at),
        "http_status": d.http_status,
        "code": d.code,
        "latency_ms": d.latency_ms,
        "parts_sent": d.parts_sent,
    }


def log_rows(ann: Announcement) -> Iterator[dict]:
    """``history.log_row`` of each of its deliveries (the rows of ``log --json``)."""
    meta = {"id": ann.id, "created_at": iso(ann.meta.created_at)}
    for d in ann.deliveries:
        yield log_row(ann.id, meta, d.to_json())


def show(ann: Announcement) -> dict:
    """``queue show`` / ``report``: totals and every delivery."""
    out = ann.summary()
    out["deliveries"] = [delivery_view(d) for d in ann.deliveries]
    return out


def report(app: App, ann_id: str) -> dict:
    ann = outbox.get(app, ann_id)
    out = show(ann)
    out["not_delivered"] = [
        {"group": d.group, "status": d.status, "reason": reason(d.status, d.last_error)}
        for d in ann.deliveries if d.status != outbox.SENT
    ]
    return out


def reason(status: str, last_error: str | None) -> str:
    """Why a delivery did not arrive: its state first, the last platform error as detail.

    A cancelled delivery is "announcement cancelled" even if an earlier attempt failed.
    """
    if status == outbox.FAILED:
        return last_error or _why(status)
    if last_error:
        return f"{_why(status)} (last attempt: {last_error})"
    return _why(status)


def _why(status: str) -> str:
    return {
        outbox.PENDING: "not sent yet",
        outbox.CANCELLED: "announcement cancelled",
        outbox.EXPIRED: "expired before delivery",
        outbox.FAILED: "failed",
    }.get(status, status)


LAG_DAYS = 7   # how long after its creation an announcement's rows commonly still change


def query(
    app: App,
    *,
    announcement: str | None = None,
    group: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> Iterator[dict]:
    """Log rows, newest first, produced as they are found.

    One announcement: its rows. Otherwise the rows changed since ``since`` (all
    without it), a day at a time from today back: the queue's rows of that day,
    and those of the finished announcements the history index says changed that
    day, opened newest first and only while they can still beat the rows found
    (``--limit``). Failed and expired rows come straight from the index's
    failure rows, without opening an announcement.
    """
    if status is not None and status not in DELIVERY_STATES:
        raise InputError(f"--status {status!r}: one of {', '.join(DELIVERY_STATES)}")

    def wanted(row: dict) -> bool:
        return ((group is None or row["group"] == group)
                and (status is None or row["status"] == status)
                and (since is None or datetime.fromisoformat(row["updated_at"]) >= since))

    if announcement is not None:
        ann = outbox.get(app, announcement)
        rows = sorted((r for r in log_rows(ann) if wanted(r)),
                      key=_newest, reverse=True)
        yield from rows[:limit] if limit else rows
        return
    yield from _by_day(app, wanted, group, status, since, limit)


def _newest(row: dict) -> datetime:
    return datetime.fromisoformat(row["updated_at"])


def _by_day(app: App, wanted, group, status, since, limit) -> Iterator[dict]:
    history = app.store.history
    live: dict[date, list[dict]] = {}
    active = outbox.active(app)
    for ann in active:
        for row in log_rows(ann):
            if wanted(row):
                live.setdefault(text_day(row["updated_at"]), []).append(row)
    queued = {ann.id for ann in active}
    today = app.now().date()
    first = since.date() if since is not None else min([*history.log_days()[:1], *live, today])
    for _ in history.check(first - timedelta(days=LAG_DAYS), today):   # mends what a crash left
        pass
    left = limit
    day = max([today, *live])
    while day >= first and (left is None or left > 0):
        index = history.log_index(day)
        found = list(live.get(day, []))
        if status in FAILED_STATES:
            found += [r for ann_id, rows in index["rows"].items() if ann_id not in queued
                      for r in rows if wanted(r)]
        else:
            found = _touched(history, index["touched"], queued, day, wanted, found, left,
                             group=group, status=status)
        found.sort(key=_newest, reverse=True)
        if left is not None:
            found = found[:left]
            left -= len(found)
        yield from found
        day -= timedelta(days=1)


def _touched(history, touched: dict[str, str], queued: set[str], day: date, wanted, found, left,
             *, group: str | None, status: str | None):
    """Rows of ``day`` from the finished announcements changed that day, latest change first;
    with a limit, stop once the next announcement cannot beat the rows found. Only the
    rows of ``group`` and ``status`` are asked of the store (a database's index finds a
    group's row without reading the other thousands); a group's, of the whole day in one
    query where the store has one (files are still opened only while they can beat)."""
    ordered = [(ann_id, last) for ann_id, last in sorted(touched.items(), key=lambda kv: kv[1],
                                                         reverse=True) if ann_id not in queued]
    of_group = (history.load_group([ann_id for ann_id, _ in ordered], group, status)
                if group is not None and history.loads_groups else None)
    for ann_id, last in ordered:
        if left is not None and len(found) >= left:
            found = heapq.nlargest(left, found, key=_newest)
            if _newest(found[-1]) > datetime.fromisoformat(last):
                break
        loaded = (of_group.get(ann_id) if of_group is not None
                  else history.load(ann_id, group=group, status=status))
        if loaded is None:
            continue
        meta, rows = loaded
        for d in rows:
            row = log_row(ann_id, meta, d)
            if text_day(row["updated_at"]) == day and wanted(row):
                found.append(row)
    return found
