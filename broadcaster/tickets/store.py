"""Tickets and their history on disk: durable, locked, partitioned by day.

Layout, under the state directory (files 0600, directories 0700)::

    tickets/open/YYYY-MM-DD.json              tickets opened that day and not yet archived
    tickets/archive/YYYY-MM/YYYY-MM-DD.json   closed and rejected ones, by the day they were opened
    state/ticket-seq.json                     the last sequence number per prefix and MMDD

Each file is ``{"tickets": {id: row}}``, rewritten whole by the store's atomic
write (temp file, fsync, rename, directory fsync) under the store lock. A
change touches one day's file, so its cost depends on how many tickets one day
brings, never on history; listing the open tickets reads ``open/`` only, so a
year of closed tickets costs nothing there.

A ticket moves between the two trees in two steps, each one atomic write;
between them it is in both, and the open copy wins:

- archiving (the pass, for closed and rejected tickets): write it into the
  archive file, then drop it from the open file;
- reopening a closed ticket: write it (marked ``unarchived``) into the open
  file, then drop it from the archive file; a crash in between is finished by
  the next pass (``finish_moves``).

Optimistic concurrency: ``change(id, apply, expected_version=v)`` applies
``apply`` under the lock only if the ticket is still at version ``v``, else
raises ``StaleTicket`` ("changed since you read it").
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from broadcaster.errors import InputError, did_you_mean
from broadcaster.store import Store, StoreError, atomic_write
from broadcaster.store.durable import fsync_dir as _fsync_dir
from broadcaster.tickets import ids
from broadcaster.tickets.model import FINAL, Ticket

SEQ_STATE = "ticket-seq"


class StaleTicket(InputError):
    """The ticket changed between reading it and writing the change (exit 1)."""


class TicketStore:
    def __init__(self, store: Store):
        self.store = store
        self.dir = store.dir / "tickets"
        self.open_dir = self.dir / "open"
        self.archive_dir = self.dir / "archive"
        self._ready = False

    def ensure(self) -> None:
        if self._ready:
            return
        self.store.ensure()
        old = os.umask(0o077)
        try:
            for d in (self.dir, self.open_dir, self.archive_dir):
                d.mkdir(exist_ok=True, mode=0o700)
        finally:
            os.umask(old)
        self._ready = True

    # -- paths ---------------------------------------------------------------------
    def open_path(self, day: date) -> Path:
        return self.open_dir / f"{day.isoformat()}.json"

    def archive_path(self, day: date) -> Path:
        return self.archive_dir / f"{day:%Y-%m}" / f"{day.isoformat()}.json"

    def _candidates(self, ticket_id: str) -> list[Path]:
        """The files that may hold ``ticket_id``: its MMDD in any year, open ones first."""
        parsed = ids.parse_id(ticket_id)
        if parsed is None:
            return []
        _, month, day = parsed
        pattern = f"*-{month:02d}-{day:02d}.json"
        opened = sorted(self.open_dir.glob(pattern), reverse=True)
        archived = sorted(self.archive_dir.glob(f"*-{month:02d}/{pattern}"), reverse=True)
        return opened + archived

    # -- files ---------------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> dict[str, dict]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            return json.loads(raw)["tickets"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{path}: damaged ticket file: {exc}") from None

    @staticmethod
    def _write(path: Path, rows: dict[str, dict]) -> None:
        if not rows:
            try:
                path.unlink()
            except FileNotFoundError:
                return
            _fsync_dir(path.parent)
            return
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = json.dumps({"tickets": rows}, ensure_ascii=False, separators=(",", ":"))
        atomic_write(path, body.encode("utf-8"))

    # -- reading -------------------------------------------------------------------
    def find(self, ticket_id: str) -> Ticket | None:
        self.ensure()
        tid = ids.normalize_id(ticket_id)
        for path in self._candidates(tid):
            row = self._read(path).get(tid)
            if row is not None:
                return Ticket.from_record(row)
        return None

    def get(self, ticket_id: str) -> Ticket:
        ticket = self.find(ticket_id)
        if ticket is None:
            if ids.parse_id(ticket_id) is None:
                raise InputError(f"{ticket_id!r} is not a ticket number (they look like "
                                 "GL-1123-0042; see: tickets list)")
            near = [t.id for t in self.open_tickets()]
            hint = did_you_mean(ids.normalize_id(ticket_id), near, " (see: tickets list)")
            raise InputError(f"no ticket {ticket_id!r}{hint}")
        return ticket

    def open_files(self) -> list[Path]:
        self.ensure()
        return sorted(self.open_dir.glob("*.json"))

    def open_tickets(self, errors: list[str] | None = None) -> list[Ticket]:
        """Every ticket in ``open/`` (closed ones awaiting the archive included).

        A damaged file raises StoreError, or with ``errors`` is named there and skipped.
        """
        out: list[Ticket] = []
        for path in self.open_files():
            try:
                rows = self._read(path)
            except StoreError as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
                continue
            out.extend(Ticket.from_record(r) for r in rows.values())
        return out

    def archived_tickets(self, months: list[str] | None = None) -> Iterator[Ticket]:
        """Archived tickets, optionally only those opened in the given ``YYYY-MM`` months."""
        self.ensure()
        dirs = ([self.archive_dir / m for m in months] if months is not None
                else sorted(p for p in self.archive_dir.iterdir() if p.is_dir()))
        for d in dirs:
            for path in sorted(d.glob("*.json")):
                for row in self._read(path).values():
                    yield Ticket.from_record(row)

    def open_mark(self) -> int:
        """Changes whenever a file of ``open/`` is written (its directory's mtime)."""
        try:
            return self.open_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    # -- writing -------------------------------------------------------------------
    def create(self, day: date, prefix: str, build: Callable[[str], Ticket],
               source: str | None = None) -> tuple[Ticket, bool]:
        """Number and store the ticket ``build(id)`` returns; ``(ticket, True)``.

        With ``source`` (one resident message), a ticket already opened from it is
        returned instead, ``(ticket, False)``: opening is idempotent per message.
        """
        self.ensure()
        path = self.open_path(day)
        with self.store.lock():
            rows = self._read(path)
            if source is not None:
                found = _by_source(rows, source) or _by_source(self._read(self.archive_path(day)),
                                                               source)
                if found is not None:
                    return Ticket.from_record(found), False
            ticket = build(ids.format_id(prefix, day, self._next_seq(prefix, day)))
            rows[ticket.id] = ticket.to_record()
            self._write(path, rows)
        return ticket, True

    def _next_seq(self, prefix: str, day: date) -> int:
        key = f"{prefix}-{day:%m%d}"
        with self.store.state(SEQ_STATE) as st:
            st[key] = int(st.get(key, 0)) + 1
            return st[key]

    def change(self, ticket_id: str, apply: Callable[[Ticket], None], *,
               expected_version: int | None = None, bump: bool = True) -> Ticket:
        """Apply ``apply(ticket)`` under the lock and store the result.

        ``expected_version``: refuse (StaleTicket) if someone changed it since.
        ``bump``: a change people make (new version); bookkeeping passes False.
        """
        self.ensure()
        tid = ids.normalize_id(ticket_id)
        with self.store.lock():
            path, rows = self._locate(tid)
            ticket = Ticket.from_record(rows[tid])
            if expected_version is not None and ticket.version != expected_version:
                last = ticket.history[-1] if ticket.history else None
                what = f": {last.status} by {last.by} at {last.at:%Y-%m-%d %H:%M}" if last else ""
                raise StaleTicket(f"ticket {tid} changed since you read it (version "
                                  f"{expected_version}, now {ticket.version}{what}); "
                                  f"see: tickets show {tid}, then try again")
            apply(ticket)
            if bump:
                ticket.version += 1
            if path.parent == self.open_dir or ticket.status in FINAL:
                rows[tid] = ticket.to_record()
                self._write(path, rows)
            else:  # reopened from the archive: back into open/, then out of the archive
                ticket.unarchived = True
                opened = self._read(self.open_path(ticket.day))
                opened[tid] = ticket.to_record()
                self._write(self.open_path(ticket.day), opened)
                del rows[tid]
                self._write(path, rows)
        return ticket

    def _locate(self, tid: str) -> tuple[Path, dict[str, dict]]:
        for path in self._candidates(tid):
            rows = self._read(path)
            if tid in rows:
                return path, rows
        raise InputError(f"no ticket {tid!r} (see: tickets list)")

    # -- moves (the pass) --------------------------------------------------------------
    def archive_final(self, path: Path, keep: set[str] = frozenset()) -> int:
        """Move the closed and rejected tickets of one open file (but ``keep``) to the archive."""
        with self.store.lock():
            rows = self._read(path)
            final = {tid: r for tid, r in rows.items() if r["status"] in FINAL and tid not in keep}
            if not final:
                return 0
            day = date.fromisoformat(path.stem)
            target = self.archive_path(day)
            archived = self._read(target)
            for tid, row in final.items():
                archived[tid] = {**row, "unarchived": False}
            self._write(target, archived)
            for tid in final:
                del rows[tid]
            self._write(path, rows)
        return len(final)

    def finish_moves(self, path: Path) -> int:
        """Drop the archive's old copies of tickets reopened from one open file's day."""
        with self.store.lock():
            rows = self._read(path)
            moved = [tid for tid, r in rows.items() if r.get("unarchived")]
            if not moved:
                return 0
            target = self.archive_path(date.fromisoformat(path.stem))
            archived = self._read(target)
            if any(tid in archived for tid in moved):
                self._write(target, {k: v for k, v in archived.items() if k not in moved})
            for tid in moved:
                rows[tid]["unarchived"] = False
            self._write(path, rows)
        return len(moved)


def _by_source(rows: dict[str, dict], source: str) -> dict | None:
    return next((r for r in rows.values() if r.get("source") == source), None)
