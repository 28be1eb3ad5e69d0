"""Tickets and their history on disk (the embedded store): durable, locked, partitioned by day.

Layout, under the state directory (files 0600, directories 0700)::

    tickets/open/YYYY-MM-DD.NNN.json          tickets opened that day and not yet archived, in
                                              shards of ``SHARD`` numbers (NNN = sequence // SHARD)
    tickets/archive/YYYY-MM/YYYY-MM-DD.json   closed and rejected ones, by the day they were opened
    tickets/sources/YYYY-MM-DD.json           resident message -> ticket number, per day opened
    state/ticket-seq.json                     the last sequence number per prefix and MMDD

Each file is ``{"tickets": {id: row}}`` (a sources file: ``{"sources": {…}}``),
rewritten whole by the store's atomic write (temp file, fsync, rename, directory
fsync) under the store lock. A change touches one shard, found from the ticket's
number, so its cost depends on neither how many tickets a day brings nor on
history; listing the open tickets reads ``open/`` only, so a year of closed
tickets costs nothing there. (An ``open/YYYY-MM-DD.json`` without a shard number,
as older versions wrote, is read and changed in place.)

A ticket moves between the two trees in two steps, each one atomic write;
between them it is in both, and the open copy wins:

- archiving (the pass, for closed and rejected tickets): write it into the
  archive file, then drop it from the open file;
- reopening a closed ticket: write it (marked ``unarchived``) into the open
  file, then drop it from the archive file; a crash in between is finished by
  the next pass (``finish_moves``).

Optimistic concurrency: ``change(id, apply, expected_version=v)`` applies
``apply`` under the store lock only if the ticket is still at version ``v``,
else raises ``StaleTicket`` ("changed since you read it"). The interface and its
promises: ``broadcaster.tickets.store``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from broadcaster.store.base import Store, StoreError
from broadcaster.store.durable import atomic_write, make_dirs
from broadcaster.store.durable import fsync_dir as _fsync_dir
from broadcaster.tickets import ids
from broadcaster.tickets.model import FINAL, Ticket
from broadcaster.tickets.store import TicketStore, no_ticket, stale

SEQ_STATE = "ticket-seq"
SHARD = 50                      # ticket numbers per file of open/


class FileTicketStore(TicketStore):
    def __init__(self, store: Store):
        self.store = store
        self.dir = store.dir / "tickets"
        self.open_dir = self.dir / "open"
        self.archive_dir = self.dir / "archive"
        self.sources_dir = self.dir / "sources"
        self._ready = False

    def ensure(self) -> None:
        if self._ready:
            return
        self.store.ensure()
        make_dirs(self.dir, self.open_dir, self.archive_dir)
        self._ready = True

    # -- paths ---------------------------------------------------------------------
    def open_path(self, day: date, ticket_id: str) -> Path:
        """The shard of ``open/`` that holds ``ticket_id``, opened on ``day``."""
        return self.open_dir / f"{day.isoformat()}.{_shard(ticket_id)}.json"

    def archive_path(self, day: date) -> Path:
        return self.archive_dir / f"{day:%Y-%m}" / f"{day.isoformat()}.json"

    def sources_path(self, day: date) -> Path:
        return self.sources_dir / f"{day.isoformat()}.json"

    @staticmethod
    def day_of(path: Path) -> date:
        """The day a file of ``open/`` or ``archive/`` holds the tickets of."""
        return date.fromisoformat(path.name[:10])

    def _candidates(self, ticket_id: str) -> list[Path]:
        """The files that may hold ``ticket_id``: its MMDD in any year, open ones first."""
        parsed = ids.parse_id(ticket_id)
        if parsed is None:
            return []
        _, month, day = parsed
        pattern = f"*-{month:02d}-{day:02d}"
        opened = sorted([*self.open_dir.glob(f"{pattern}.{_shard(ticket_id)}.json"),
                         *self.open_dir.glob(f"{pattern}.json")], reverse=True)
        archived = sorted(self.archive_dir.glob(f"*-{month:02d}/{pattern}.json"), reverse=True)
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
        make_dirs(path.parent)
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

    def open_files(self) -> list[Path]:
        self.ensure()
        return sorted(self.open_dir.glob("*.json"))

    def open_rows(self, errors: list[str] | None = None, **hints: Any) -> list[dict]:
        """Every ticket in ``open/`` (closed ones awaiting the archive included; the filter
        ``hints`` are left to the caller: the files are read whole anyway).

        A damaged file raises StoreError, or with ``errors`` is named there and skipped.
        """
        out: list[dict] = []
        for path in self.open_files():
            try:
                rows = self._read(path)
            except StoreError as exc:
                if errors is None:
                    raise
                errors.append(str(exc))
                continue
            out.extend(rows.values())
        return out

    def archived_rows(self, months: list[str] | None = None, *,
                      since: date | None = None) -> Iterator[dict]:
        """Archived tickets' rows, optionally only those opened in the given ``YYYY-MM``
        months (``since`` is left to the caller: a month's files are read whole)."""
        self.ensure()
        dirs = ([self.archive_dir / m for m in months] if months is not None
                else sorted(p for p in self.archive_dir.iterdir() if p.is_dir()))
        for d in dirs:
            for path in sorted(d.glob("*.json")):
                yield from self._read(path).values()

    def kept(self) -> bool:
        return self.open_dir.is_dir()

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
        returned instead, ``(ticket, False)``: opening is idempotent per message. The
        message's number is written down (``sources/``) before the ticket, so a crash
        between the two reuses that number rather than opening a second ticket.
        """
        self.ensure()
        with self.store.lock():
            tid = self._source_ticket(day, source) if source is not None else None
            if tid is not None:
                found = self.find(tid)
                if found is not None:
                    return found, False
            else:
                tid = ids.format_id(prefix, day, self._next_seq(prefix, day))
                if source is not None:
                    self._remember_source(day, source, tid)
            ticket = build(tid)
            path = self.open_path(day, ticket.id)
            rows = self._read(path)
            rows[ticket.id] = ticket.to_record()
            self._write(path, rows)
        return ticket, True

    def _source_ticket(self, day: date, source: str) -> str | None:
        return self.read_sources(self.sources_path(day)).get(source)

    def _remember_source(self, day: date, source: str, tid: str) -> None:
        path = self.sources_path(day)
        known = self.read_sources(path)
        known[source] = tid
        make_dirs(path.parent)
        body = json.dumps({"sources": known}, ensure_ascii=False, separators=(",", ":"))
        atomic_write(path, body.encode("utf-8"))

    @staticmethod
    def read_sources(path: Path) -> dict[str, str]:
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise StoreError(f"{path}: damaged ticket file: {exc}") from None
        sources = data.get("sources") if isinstance(data, dict) else None
        if not isinstance(sources, dict):
            raise StoreError(f"{path}: damaged ticket file: no sources")
        return sources

    def forget_sources_before(self, day: date) -> int:
        """Delete the message -> ticket files of days before ``day``."""
        gone = 0
        for path in self.sources_dir.glob("*.json") if self.sources_dir.is_dir() else []:
            try:
                old = date.fromisoformat(path.stem) < day
            except ValueError:
                continue
            if old:
                path.unlink(missing_ok=True)
                gone += 1
        return gone

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
                raise stale(tid, expected_version, ticket)
            apply(ticket)
            if bump:
                ticket.version += 1
            if path.parent == self.open_dir or ticket.status in FINAL:
                rows[tid] = ticket.to_record()
                self._write(path, rows)
            else:  # reopened from the archive: back into open/, then out of the archive
                ticket.unarchived = True
                target = self.open_path(ticket.day, tid)
                opened = self._read(target)
                opened[tid] = ticket.to_record()
                self._write(target, opened)
                del rows[tid]
                self._write(path, rows)
        return ticket

    def _locate(self, tid: str) -> tuple[Path, dict[str, dict]]:
        for path in self._candidates(tid):
            rows = self._read(path)
            if tid in rows:
                return path, rows
        raise no_ticket(tid)

    # -- moves (the pass) --------------------------------------------------------------
    def tidy(self, rows: list[dict], keep: set[str]) -> int:
        """Per file of ``open/`` with tickets to archive or to drop from the archive (and
        any file written without a shard number, which older versions wrote):
        ``finish_moves``, then ``archive_final``."""
        paths = {self.open_path(date.fromisoformat(r["day"]), r["id"]) for r in rows
                 if r["status"] in FINAL or r.get("unarchived")}
        paths.update(p for p in self.open_files() if len(p.name) == len("YYYY-MM-DD.json"))
        moved = 0
        for path in sorted(p for p in paths if p.exists()):
            moved += self.finish_moves(path)
            moved += self.archive_final(path, keep)
        return moved

    def archive_final(self, path: Path, keep: set[str] = frozenset()) -> int:
        """Move the closed and rejected tickets of one open file (but ``keep``) to the archive."""
        with self.store.lock():
            rows = self._read(path)
            final = {tid: r for tid, r in rows.items() if r["status"] in FINAL and tid not in keep}
            if not final:
                return 0
            target = self.archive_path(self.day_of(path))
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
            target = self.archive_path(self.day_of(path))
            archived = self._read(target)
            if any(tid in archived for tid in moved):
                self._write(target, {k: v for k, v in archived.items() if k not in moved})
            for tid in moved:
                rows[tid]["unarchived"] = False
            self._write(path, rows)
        return len(moved)


def _shard(ticket_id: str) -> str:
    """``GL-1123-0042`` -> ``000`` (its sequence // SHARD)."""
    seq = ticket_id.rsplit("-", 1)[-1]
    return f"{int(seq) // SHARD:03d}" if seq.isdigit() else "000"
