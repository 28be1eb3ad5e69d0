"""The history index: summaries kept as announcements finish, so that reading 180 days
of delivery history means reading a few small files, not millions of rows.

Layout under the state directory (files 0600, directories 0700)::

    history/days/YYYY-MM-DD.json   per day announcements were created (the date in their
                                   ids): a ``Tally`` of the finished ones: their summaries
                                   (the per-announcement totals), per-group counts,
                                   failure reasons, latency histograms
    history/log/YYYY-MM-DD.json    per day deliveries changed: which finished announcements
                                   had rows changed that day and the latest change
                                   (``touched``), and their failed and expired rows that
                                   day (``rows``: the failure index)
    history/months/YYYY-MM-01.json a past month's day tallies summed up (``Tally.compact``),
                                   each day's figures, and which announcements each day
                                   held (``days``: a fingerprint of their ids)

``record`` adds a finished announcement (the store calls it when it moves one
to the archive, under the store lock); ``forget`` takes one out (when a retry
reopens it). Each is one or two small atomic writes, whatever the history.

The index is a cache of the archive, checked before it is trusted: ``check``
compares a day's announcements with the archive's listing (cheap: a directory
listing per month) and rebuilds a day that differs from its archived files, so
a crash between the archive move and the index write, a store written before
the index existed, or a damaged index file cost one rebuild, never a wrong
figure. Retention drops whole days (``drop_before``).

``window`` reads a range of days the way ``stats`` wants it: each whole month
before the current one as its month document (so 180 days are about six
documents and a few weeks of days, not 180), the other days one tally each. A
month document is used only while every day's fingerprint matches the
archive's listing; otherwise (an announcement of that month retried, or
finished late) it is summed again from its days, which are checked as usual.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from broadcaster.store.durable import make_dirs
from broadcaster.store.tally import Tally

log = logging.getLogger("broadcaster.store")

FAILED_STATES = ("failed", "expired")



class Loader(Protocol):
    """(meta, delivery rows) of an archived announcement as JSON, or None if it is not
    archived; with ``group`` or ``status``, only the rows of that group or in that state
    (a database's index picks them; files are read whole and filtered: ``matching``)."""

    def __call__(self, ann_id: str, *, group: str | None = None, status: str | None = None
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None: ...


# ``Loader`` of a group's rows of many announcements at once: {id: (meta, rows)} of those archived
GroupLoader = Callable[[list[str], str, str | None], dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]]

# archived ids by the day in their id, for the given YYYY-MM months (None: all)
Listing = Callable[[list[str] | None], dict[date, set[str]]]


def id_day(ann_id: str) -> date:
    """The day in an announcement id (``20261122-…``): the local day it was created."""
    return date(int(ann_id[:4]), int(ann_id[4:6]), int(ann_id[6:8]))


def months_of(days: Iterable[date]) -> list[str]:
    return sorted({f"{d:%Y-%m}" for d in days})


def log_row(ann_id: str, meta: dict, d: dict) -> dict[str, Any]:
    """A row of the delivery log (``log --json``)."""
    return {
        "announcement": ann_id,
        "group": d["group"],
        "status": d["status"],
        "attempts": d.get("attempts", 0),
        "last_error": d.get("last_error"),
        "updated_at": d.get("updated_at") or meta["created_at"],
        "sent_at": d.get("sent_at"),
        "http_status": d.get("http_status"),
        "code": d.get("code"),
        "latency_ms": d.get("latency_ms"),
    }


def matching(rows: Iterable[dict], group: str | None, status: str | None) -> list[dict]:
    """The delivery rows of ``group`` in ``status`` (None: any)."""
    return [d for d in rows if (group is None or d.get("group") == group)
            and (status is None or d.get("status") == status)]


def text_day(text: str) -> date:
    """The day of an ISO time as it was written (in the zone of its own offset)."""
    return date.fromisoformat(text[:10])


class Shelf(Protocol):
    """Where the index is kept: JSON documents by kind (``days``, ``log``) and day."""

    def read(self, kind: str, day: date) -> dict | None: ...

    def save(self, kind: str, day: date, data: dict) -> None: ...

    def delete(self, kind: str, day: date) -> None: ...

    def dates(self, kind: str, first: date | None, last: date | None) -> list[date]: ...


class FileShelf:
    """The index as files: ``history/<kind>/YYYY-MM-DD.json`` (written by ``write``)."""

    def __init__(self, state_dir: Path, write: Callable[[Path, bytes], None]):
        self.dir = state_dir / "history"
        self._write = write

    def path(self, kind: str, day: date) -> Path:
        return self.dir / kind / f"{day.isoformat()}.json"

    def read(self, kind: str, day: date) -> dict | None:
        path = self.path(kind, day)
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:  # a cache: rebuilt, never trusted
            log.warning("history index %s unreadable (%s): rebuilt", path, exc)
            return None
        return data if isinstance(data, dict) else None

    def save(self, kind: str, day: date, data: dict) -> None:
        path = self.path(kind, day)
        make_dirs(path.parent)
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        self._write(path, body.encode("utf-8"))

    def delete(self, kind: str, day: date) -> None:
        self.path(kind, day).unlink(missing_ok=True)

    def dates(self, kind: str, first: date | None, last: date | None) -> list[date]:
        try:
            names = os.listdir(self.dir / kind)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                day = date.fromisoformat(name.removesuffix(".json"))
            except ValueError:
                continue
            if (first is None or day >= first) and (last is None or day <= last):
                out.append(day)
        return sorted(out)


DAYS, LOG, MONTHS = "days", "log", "months"   # a month is kept under its first day


class Piece:
    """A part of a window of days: one day's tally (``day``), or a month's sum with each
    day's figures (``daily``: day -> {"announcements", "sent", "failed", …})."""

    __slots__ = ("daily", "day", "tally")

    def __init__(self, tally: Tally, *, day: date | None = None,
                 daily: dict[date, dict[str, int]] | None = None):
        self.tally = tally
        self.day = day
        self.daily = daily


def _months(first: date, last: date) -> list[date]:
    """The first days of the months from ``first``'s to ``last``'s."""
    months, cur = [], first.replace(day=1)
    while cur <= last:
        months.append(cur)
        cur = date(cur.year + (cur.month == 12), cur.month % 12 + 1, 1)
    return months


def _month_end(start: date) -> date:
    following = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def _fingerprint(ids: set[str]) -> str:
    """Which announcements a day holds, in a few bytes: their number and a hash of their ids."""
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
    return f"{len(ids)}:{digest}"


class History:
    def __init__(self, shelf: Shelf, *, load: Loader, listing: Listing,
                 lock: Callable[[], AbstractContextManager], load_group: GroupLoader | None = None):
        self.shelf = shelf
        self._load = load
        self._load_group = load_group
        self._listing = listing
        self._lock = lock

    @classmethod
    def in_files(cls, state_dir: Path, *, load: Loader, listing: Listing,
                 lock: Callable[[], AbstractContextManager],
                 write: Callable[[Path, bytes], None]) -> History:
        """The index kept in files under ``state_dir/history`` (the embedded store's)."""
        return cls(FileShelf(state_dir, write), load=load, listing=listing, lock=lock)

    def load(self, ann_id: str, *, group: str | None = None, status: str | None = None
             ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """An archived announcement's meta and rows (None if it is not in the archive); with
        ``group`` or ``status``, only its rows of that group or in that state."""
        return self._load(ann_id, group=group, status=status)

    @property
    def loads_groups(self) -> bool:
        """Whether ``load_group`` is one query (a database), not one load per announcement."""
        return self._load_group is not None

    def load_group(self, ann_ids: list[str], group: str, status: str | None = None
                   ) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
        """``load(…, group=group, status=status)`` of each of ``ann_ids`` that is archived, by
        id: in one query where the store has one (a database), else one at a time."""
        if self._load_group is not None:
            return self._load_group(ann_ids, group, status)
        loaded = {ann_id: self._load(ann_id, group=group, status=status) for ann_id in ann_ids}
        return {ann_id: got for ann_id, got in loaded.items() if got is not None}

    def tally(self, day: date) -> Tally | None:
        data = self.shelf.read(DAYS, day)
        return None if data is None else Tally.from_json(data)

    # -- writing (under the store lock) ---------------------------------------------------
    def record(self, meta: dict, rows: list[dict]) -> None:
        """Add a finished announcement to the index."""
        self.record_many([(meta, rows)])

    def record_many(self, finished: list[tuple[dict, list[dict]]]) -> None:
        """Add finished announcements: each day's files are read and written once."""
        by_day: dict[date, list[tuple[dict, list[dict]]]] = {}
        for meta, rows in finished:
            by_day.setdefault(id_day(meta["id"]), []).append((meta, rows))
        log_days: dict[date, dict] = {}
        for day, items in by_day.items():
            tally = self.tally(day) or Tally()
            again = [m["id"] for m, _ in items if m["id"] in tally.announcements]
            if again:   # finished again after a retry: rebuilt from the others
                for ann_id in again:
                    self._forget_log(ann_id, tally.announcements[ann_id])
                tally = Tally()
                for ann_id in self._listing(months_of([day])).get(day, set()) - {m["id"] for m, _ in items}:
                    loaded = self._load(ann_id)
                    if loaded is not None:
                        tally.add(*loaded)
                        tally.announcements[ann_id]["log_days"] = self._add_log(*loaded, log_days)
            for meta, rows in items:
                tally.add(meta, rows)
                tally.announcements[meta["id"]]["log_days"] = self._add_log(meta, rows, log_days)
            self.shelf.save(DAYS, day, tally.as_json())
        for day, data in log_days.items():
            self.shelf.save(LOG, day, data)

    def forget(self, ann_id: str) -> None:
        """Take an announcement out of the index (it left the archive)."""
        day = id_day(ann_id)
        tally = self.tally(day)
        if tally is None or ann_id not in tally.announcements:
            return
        self._forget_log(ann_id, tally.announcements[ann_id])
        self._rebuild(day, self._listing(months_of([day])).get(day, set()) - {ann_id})

    def _add_log(self, meta: dict, rows: list[dict], pending: dict[date, dict]) -> list[str]:
        """Note the announcement in the log index (``pending``: day -> file content, to be
        saved by the caller) of every day its rows changed; returns those days."""
        touched: dict[date, str] = {}
        failed: dict[date, list[dict]] = {}
        for d in rows:
            row = log_row(meta["id"], meta, d)
            day = text_day(row["updated_at"])
            if row["updated_at"] > touched.get(day, ""):
                touched[day] = row["updated_at"]
            if d["status"] in FAILED_STATES:
                failed.setdefault(day, []).append(row)
        for day, last in touched.items():
            data = pending.get(day)
            if data is None:
                data = pending[day] = self.shelf.read(LOG, day) or {"touched": {}, "rows": {}}
            data["touched"][meta["id"]] = last
            data["rows"].pop(meta["id"], None)
            if day in failed:
                data["rows"][meta["id"]] = failed[day]
        return sorted(d.isoformat() for d in touched)

    def _forget_log(self, ann_id: str, summary: dict) -> None:
        for text in summary.get("log_days", []):
            day = date.fromisoformat(text)
            data = self.shelf.read(LOG, day)
            if data and ann_id in data.get("touched", {}):
                data["touched"].pop(ann_id, None)
                data["rows"].pop(ann_id, None)
                self.shelf.save(LOG, day, data)

    def _rebuild(self, day: date, ids: set[str]) -> Tally:
        tally = Tally()
        log_days: dict[date, dict] = {}
        for ann_id in sorted(ids):
            loaded = self._load(ann_id)
            if loaded is None:
                continue
            tally.add(*loaded)
            tally.announcements[ann_id]["log_days"] = self._add_log(*loaded, log_days)
        for log_day, data in log_days.items():
            self.shelf.save(LOG, log_day, data)
        if tally.announcements:
            self.shelf.save(DAYS, day, tally.as_json())
        else:
            self.shelf.delete(DAYS, day)
        return tally

    # -- reading --------------------------------------------------------------------------
    def check(self, first: date, last: date) -> Iterator[tuple[date, Tally]]:
        """The tallies of the days from ``first`` to ``last`` that had finished announcements,
        oldest first, one at a time, each matching the archive (a day that does not is
        rebuilt first)."""
        archived = self._listing([f"{m:%Y-%m}" for m in _months(first, last)])
        for day in sorted(set(archived) | set(self.days(first, last))):
            if first <= day <= last:
                tally = self._checked(day, archived.get(day, set()))
                if tally is not None:
                    yield day, tally

    def window(self, first: date, last: date, today: date) -> Iterator[Piece]:
        """The tallies of the days from ``first`` to ``last``, oldest first: a month that lies
        wholly inside and ended before ``today``'s month as one piece (its month document),
        every other day with finished announcements as a piece of its own."""
        months = _months(first, last)
        archived = self._listing([f"{m:%Y-%m}" for m in months])
        for start in months:
            end = _month_end(start)
            if first <= start and end <= last and end < today.replace(day=1):
                piece = self._month(start, {d: ids for d, ids in archived.items()
                                            if start <= d <= end})
                if piece is not None:
                    yield piece
                continue
            for day in sorted(d for d in set(archived) | set(self.days(start, end))
                              if first <= d <= last and start <= d <= end):
                tally = self._checked(day, archived.get(day, set()))
                if tally is not None:
                    yield Piece(tally, day=day)

    def sum_past_month(self, today: date) -> None:
        """Sum up the month before ``today``'s now, so the first ``stats`` after it need not
        (cheap once done: the month document is only checked)."""
        start = date.fromordinal(today.replace(day=1).toordinal() - 1).replace(day=1)
        for _ in self.window(start, _month_end(start), today):
            pass

    def _month(self, start: date, archived: dict[date, set[str]]) -> Piece | None:
        """A past month's piece: its month document while it matches the archive, else
        summed again from its (checked) days and saved."""
        prints = {d.isoformat(): _fingerprint(ids) for d, ids in archived.items() if ids}
        data = self.shelf.read(MONTHS, start)
        if data is not None and data.get("days") == prints:
            try:
                return Piece(Tally.from_json(data["tally"]), daily={
                    date.fromisoformat(d): counts for d, counts in data["daily"].items()})
            except (KeyError, TypeError, ValueError, AttributeError):
                log.warning("history of the month %s unreadable: summed again", f"{start:%Y-%m}")
        total, daily = Tally(), {}
        for day in sorted(set(archived) | set(self.days(start, _month_end(start)))):
            tally = self._checked(day, archived.get(day, set()))
            if tally is not None:
                published = tally.published()
                daily[day] = {"announcements": published, **total.merge(tally)}
        if not daily:
            self.shelf.delete(MONTHS, start)
            return None
        total = total.compact()
        self.shelf.save(MONTHS, start, {
            "days": prints, "tally": total.as_json(),
            "daily": {d.isoformat(): counts for d, counts in daily.items()}})
        return Piece(total, daily=daily)

    def _checked(self, day: date, ids: set[str]) -> Tally | None:
        """The day's tally if it holds exactly ``ids`` (the archive's), else rebuilt."""
        tally = self.tally(day)
        if tally is None and not ids:
            return None
        if tally is not None and set(tally.announcements) == ids:
            return tally
        with self._lock():
            ids = self._listing(months_of([day])).get(day, set())
            tally = self.tally(day)
            if tally is not None and set(tally.announcements) == ids:
                return tally  # rebuilt by another process meanwhile
            log.info("history index of %s rebuilt from the archive", day)
            tally = self._rebuild(day, ids)
        return tally if tally.announcements else None

    def days(self, first: date | None = None, last: date | None = None) -> list[date]:
        """Days with an index file, oldest first."""
        return self.shelf.dates(DAYS, first, last)

    def log_days(self, first: date | None = None, last: date | None = None) -> list[date]:
        return self.shelf.dates(LOG, first, last)

    def log_index(self, day: date) -> dict:
        """``{"touched": {id: last change}, "rows": {id: [failed and expired rows]}}`` of a day."""
        return self.shelf.read(LOG, day) or {"touched": {}, "rows": {}}

    def summaries(self) -> Iterator[dict]:
        """Summaries of finished announcements, newest first, a day at a time (each day
        checked against the archive when it is reached)."""
        archived = self._listing(None)
        for day in sorted(set(archived) | set(self.days()), reverse=True):
            tally = self._checked(day, archived.get(day, set()))
            if tally is not None:
                yield from sorted(tally.announcements.values(), key=lambda s: s["created_at"],
                                  reverse=True)

    # -- retention ------------------------------------------------------------------------
    def drop_before(self, day: date) -> int:
        """Delete the index of days before ``day`` (and of months that ended before it);
        returns how many documents went."""
        gone = 0
        for kind in (DAYS, LOG):
            for d in self.shelf.dates(kind, None, day):
                if d < day:
                    self.shelf.delete(kind, d)
                    gone += 1
        for start in self.shelf.dates(MONTHS, None, day):
            if _month_end(start) < day:
                self.shelf.delete(MONTHS, start)
                gone += 1
        return gone
