"""Tickets on PostgreSQL: the tables ``tickets``, ``ticket_history`` and ``ticket_sources``.

One row per ticket: the columns ``tickets list``, ``stats`` and the pass
filter and sort on (status, staff, category, group, day, deadline, when it
was last resolved) and the rest of ``Ticket.to_record`` as ``jsonb``; one row
per line of its history. ``stats`` counts from the columns (``FIGURES``).
There is no archive to move tickets to: ``working`` (not closed or rejected,
or messages still to queue) splits the open tickets from the archived ones,
and each half has its index.

Versions (``broadcaster.tickets.store``): a change reads the ticket, applies
the caller's change and writes it with
``UPDATE tickets … WHERE id = %s AND version = %s AND changed = %s``, so of
two changes made from the same read one updates a row and the other none:
that one reads again, and is refused with ``StaleTicket`` when a person's
change (a new ``version``) came first, or is applied again on the new copy
when it was bookkeeping (``changed`` moves on every write). Nothing waits on
a row lock held by another terminal.

Numbers come from the table ``counters`` (``ticket-seq/<prefix>-<MMDD>``),
incremented in the transaction that inserts the ticket, so no two machines
give one number. The message a ticket was opened from is written in that
same transaction (``ticket_sources``), under an advisory lock on the message,
so one message opens one ticket however many servers see it.

A row whose record does not read as a ticket (edited by hand, or by a bug) is
moved to the table ``damaged`` with its history by the read that meets it
(``set_aside``), as the store does with announcements: reads go on without it,
``status`` and ``check`` name it, ``get`` says where it went.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING

from broadcaster.tickets import ids
from broadcaster.tickets.model import ACTIVE, FINAL, RESOLVED, Ticket
from broadcaster.tickets.store import (
    Counts,
    Figures,
    TicketStore,
    months_between,
    open_copy_wins,
    stale,
)

if TYPE_CHECKING:
    import psycopg

    from broadcaster.store.pgstore import PgStore

SEQ = "ticket-seq/"             # counters: ticket-seq/GL-1123
# A ticket as Ticket.to_record() gives it: the record, its version and its history.
SELECT = """SELECT t.record || jsonb_build_object('version', t.version, 'history', coalesce(
  (SELECT jsonb_agg(h.change ORDER BY h.position) FROM ticket_history h WHERE h.ticket = t.id),
  '[]'::jsonb)), t.changed, t.id FROM tickets t """
INSERT = """INSERT INTO tickets (id, changed, day, version, status, working, category, grp,
  staff, created_at, deadline, resolved_at, record, create_key)
VALUES (%s, nextval('ticket_changes'), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING"""
UPDATE = """UPDATE tickets SET changed = nextval('ticket_changes'), day = %s, version = %s,
  status = %s, working = %s, category = %s, grp = %s, staff = %s, created_at = %s,
  deadline = %s, resolved_at = %s, record = %s, write_key = %s
WHERE id = %s AND version = %s AND changed = %s"""

# TicketStore.figures in one statement: each ticket counted once, in its grid (grids: the
# groups' grids as two arrays), then the counts by grid, by status and in all.
FIGURES = """WITH grids (grp, grid) AS (SELECT * FROM unnest(%(groups)s::text[], %(grids)s::text[])),
counted AS (
  SELECT coalesce(g.grid, %(unknown)s) AS grid, t.status,
    t.created_at BETWEEN %(start)s AND %(end)s AS opened,
    t.resolved_at BETWEEN %(start)s AND %(end)s AS resolved,
    (extract(epoch FROM t.resolved_at) - extract(epoch FROM t.created_at))::float8 AS handling,
    t.status = ANY(%(active)s) AND t.deadline <= %(end)s AS overdue
  FROM (SELECT grp, status, created_at, resolved_at, deadline FROM tickets WHERE working
        UNION ALL
        SELECT grp, status, created_at, resolved_at, deadline FROM tickets
        WHERE NOT working AND day >= %(first)s AND day < %(last)s) t
  LEFT JOIN grids g ON g.grp = t.grp)
SELECT grouping(grid), grouping(status), grid, status,
  count(*) FILTER (WHERE opened), count(*) FILTER (WHERE resolved),
  count(*) FILTER (WHERE overdue),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY handling) FILTER (WHERE resolved)
FROM counted GROUP BY GROUPING SETS ((grid), (status), ())"""


def _second(at: datetime | None) -> datetime | None:
    """``at`` as the record keeps it (``iso``: to the second), so that what the columns
    count (``FIGURES``) is what the record says."""
    return None if at is None else at.replace(microsecond=0)


def _days(months: list[str]) -> tuple[date, date]:
    """The first day of the first of the ``YYYY-MM`` ``months`` and the day after the last."""
    end = date.fromisoformat(f"{max(months)}-01")
    return (date.fromisoformat(f"{min(months)}-01"),
            date(end.year + end.month // 12, end.month % 12 + 1, 1))


def columns(t: Ticket) -> tuple:
    """The values of the columns from ``day`` to ``record`` for ``t`` (its history is kept apart)."""
    from psycopg.types.json import Jsonb  # start-up time: loaded when first used

    record = t.to_record()
    del record["history"]
    return (t.day, t.version, t.status, t.status not in FINAL or bool(t.notices), t.category,
            t.group, t.staff, _second(t.created_at), _second(t.deadline),
            _second(t.changed_at(RESOLVED)), Jsonb(record))


def history_rows(t: Ticket, first: int = 0) -> list[tuple]:
    """The rows of ``ticket_history`` for ``t``'s history from position ``first`` on."""
    from psycopg.types.json import Jsonb  # start-up time: loaded when first used

    return [(t.id, i, _second(c.at), c.by, c.status, Jsonb(c.as_json()))
            for i, c in enumerate(t.history) if i >= first]


def add_history(conn: psycopg.Connection, rows: list[tuple]) -> None:
    if rows:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO ticket_history (ticket, position, at, actor, status, change)"
                            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", rows)


def insert(conn: psycopg.Connection, t: Ticket, key: str | None = None) -> bool:
    """Insert ``t`` with its history unless its number is taken; True when inserted.
    ``key``: the create's idempotency key (see ``PgTicketStore.create``)."""
    added = conn.execute(INSERT, (t.id, *columns(t), key)).rowcount == 1
    if added:
        add_history(conn, history_rows(t))
    return added


def insert_many(conn: psycopg.Connection, tickets: list[Ticket]) -> int:
    """Insert ``tickets`` with their histories (``db import``: two statements, pipelined); a
    number already taken keeps its row, and its history lines where they exist. Returns how
    many were inserted."""
    if not tickets:
        return 0
    with conn.cursor() as cur:
        cur.executemany(INSERT, [(t.id, *columns(t), None) for t in tickets])
        added = cur.rowcount
    add_history(conn, [row for t in tickets for row in history_rows(t)])
    return added


class PgTicketStore(TicketStore):
    def __init__(self, store: PgStore):
        self.store = store

    # -- reading -------------------------------------------------------------------
    def _one(self, conn: psycopg.Connection, tid: str) -> tuple[Ticket, int] | None:
        """The ticket and its ``changed``; None if there is none, or it was damaged (set aside)."""
        found = list(self._readable(conn.execute(SELECT + "WHERE t.id = %s", (tid,)).fetchall()))
        return (found[0][1], found[0][2]) if found else None

    def _readable(self, rows: list[tuple], errors: list[str] | None = None
                  ) -> Iterator[tuple[dict, Ticket, int]]:
        """``(record, ticket, changed)`` of the ``SELECT`` rows that read as tickets, one by
        one (each built once, here: the readers hand back these; a long archive read holds
        no more tickets than its caller keeps). One that does not is set aside
        (``set_aside``), left out and, with ``errors``, named there."""
        for record, changed, tid in rows:
            try:
                ticket = Ticket.from_record(record)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                note = self.set_aside(tid, changed, record, f"not a ticket: {type(exc).__name__}: {exc}")
                if errors is not None:
                    errors.append(note)
                continue
            yield record, ticket, changed

    def set_aside(self, tid: str, changed: int, record: object, reason: str) -> str:
        """Move a ticket that does not read (its record and history as read) to the table
        ``damaged``, where ``status`` and ``check`` name it, unless it was written again
        since it was read; returns what the pass reports."""
        def move(conn: psycopg.Connection) -> None:
            if conn.execute("DELETE FROM tickets WHERE id = %s AND changed = %s",
                            (tid, changed)).rowcount:
                self.store.set_aside(f"ticket {tid}", "tickets", reason, record)

        self.store.run(move, "set aside")
        return f"ticket {tid} is damaged ({reason}): set aside in table damaged"

    def find(self, ticket_id: str) -> Ticket | None:
        found = self.store.run(lambda conn: self._one(conn, ids.normalize_id(ticket_id)), "tickets")
        return None if found is None else found[0]

    def open_rows(self, errors: list[str] | None = None, *, status: str | None = None,
                  staff: str | None = None, category: str | None = None,
                  overdue_at: datetime | None = None) -> list[dict]:
        return [record for record, _, _ in self._open(errors, status, staff, category, overdue_at)]

    def open_tickets(self, errors: list[str] | None = None, *, status: str | None = None,
                     staff: str | None = None, category: str | None = None,
                     overdue_at: datetime | None = None,
                     where: Callable[[dict], bool] | None = None) -> list[Ticket]:
        return [t for record, t, _ in self._open(errors, status, staff, category, overdue_at)
                if where is None or where(record)]

    def _open(self, errors: list[str] | None, status: str | None, staff: str | None,
              category: str | None, overdue_at: datetime | None
              ) -> Iterator[tuple[dict, Ticket, int]]:
        """The working tickets that pass the hints given (by ``tickets_working`` or
        ``tickets_working_staff``), soonest deadline first."""
        where, params = ["t.working"], []
        for clause, value in (("t.status = %s", status), ("t.staff = %s", staff),
                              ("t.category = %s", category)):
            if value is not None:
                where.append(clause)
                params.append(value)
        if overdue_at is not None:
            where.append("t.deadline <= %s AND t.status = ANY(%s)")
            params += [overdue_at, sorted(ACTIVE)]
        query = SELECT + f"WHERE {' AND '.join(where)} ORDER BY t.deadline, t.id"   # fixed clauses
        rows = self.store.run(lambda conn: conn.execute(query, params).fetchall(), "tickets")
        return self._readable(rows, errors)

    def archived_rows(self, months: list[str] | None = None, *,
                      since: date | None = None) -> Iterator[dict]:
        for record, _, _ in self._archived(months, since):
            yield record

    def archived_tickets(self, months: list[str] | None = None, *,
                         since: date | None = None) -> Iterator[Ticket]:
        for _, ticket, _ in self._archived(months, since):
            yield ticket

    def every_ticket(self, months: list[str] | None = None, *, status: str | None = None,
                     since: date | None = None) -> Iterator[Ticket]:
        yield from open_copy_wins(self.open_tickets(status=status),
                                  self.archived_tickets(months, since=since), lambda t: t.id)

    def _archived(self, months: list[str] | None, since: date | None
                  ) -> Iterator[tuple[dict, Ticket, int]]:
        """By ``tickets_archive``: the days of ``months`` (from ``since`` on)."""
        if months is not None and not months:
            return iter(())
        first, last = _days(months) if months else (None, None)
        if since is not None:
            first = max(first, since) if first is not None else since
        rows = self.store.run(lambda conn: conn.execute(
            SELECT + "WHERE NOT t.working"
            " AND t.day >= coalesce(%s::date, '-infinity') AND t.day < coalesce(%s::date, 'infinity')"
            " AND (%s::text[] IS NULL OR to_char(t.day, 'YYYY-MM') = ANY(%s::text[]))"
            " ORDER BY t.day, t.id", (first, last, months, months)).fetchall(), "tickets")
        return self._readable(rows)

    def figures(self, start: datetime, end: datetime, grids: Mapping[str, str],
                unknown: str) -> Figures:
        """One query (``FIGURES``): the working tickets by ``tickets_working``, the archived
        ones of the window's months by ``tickets_archive``."""
        first, last = _days(months_between(start, end))
        params = {"groups": list(grids), "grids": list(grids.values()), "unknown": unknown,
                  "start": start, "end": end, "active": sorted(ACTIVE), "first": first,
                  "last": last}
        rows = self.store.run(lambda conn: conn.execute(FIGURES, params).fetchall(), "tickets")
        out = Figures()
        for all_grids, all_statuses, grid, status, opened, resolved, overdue, handling in rows:
            if not all_grids:
                out.by_grid[grid] = Counts(opened, resolved, overdue, handling)
            elif not all_statuses:
                if opened:
                    out.by_status[status] = opened
            else:
                out.total = Counts(opened, resolved, overdue, handling)
        return out

    def kept(self) -> bool:
        return self.store.run(lambda conn: conn.execute(
            "SELECT EXISTS (SELECT 1 FROM tickets)").fetchone()[0], "tickets")

    def open_mark(self) -> int:
        last, called = self.store.run(lambda conn: conn.execute(
            "SELECT last_value, is_called FROM ticket_changes").fetchone(), "tickets")
        return last if called else 0

    # -- writing -------------------------------------------------------------------
    def create(self, day: date, prefix: str, build: Callable[[str], Ticket],
               source: str | None = None) -> tuple[Ticket, bool]:
        """Idempotent across retries: a key made before the first try is kept with the
        ticket (``create_key``), so a try after one whose commit's answer was lost returns
        the ticket that one made (``(ticket, True)``) instead of numbering a second."""
        key = secrets.token_hex(16)
        tries = 0

        def add(conn: psycopg.Connection) -> tuple[Ticket, bool]:
            nonlocal tries
            tries += 1
            if tries > 1:       # the first try may have committed before its answer was lost
                row = conn.execute("SELECT id FROM tickets WHERE create_key = %s", (key,)).fetchone()
                found = row and self._one(conn, row[0])
                if found:
                    return found[0], True
            if source is not None:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                             (f"ticket-source/{day}/{source}",))
                row = conn.execute("SELECT ticket FROM ticket_sources WHERE day = %s AND source = %s",
                                   (day, source)).fetchone()
                if row is not None:
                    found = self._one(conn, row[0])
                    if found is not None:
                        return found[0], False
                    conn.execute("DELETE FROM ticket_sources WHERE day = %s AND source = %s",
                                 (day, source))         # its ticket was damaged: set aside
            tid = ids.format_id(prefix, day, self.store.next_number(f"{SEQ}{prefix}-{day:%m%d}"))
            if source is not None:
                conn.execute("INSERT INTO ticket_sources (day, source, ticket) VALUES (%s, %s, %s)",
                             (day, source, tid))
            ticket = build(tid)
            insert(conn, ticket, key)
            return ticket, True

        return self.store.run(add, "tickets")

    def change(self, ticket_id: str, apply: Callable[[Ticket], None], *,
               expected_version: int | None = None, bump: bool = True) -> Ticket:
        tid = ids.normalize_id(ticket_id)
        while True:
            found = self.store.run(lambda conn: self._one(conn, tid), "tickets")
            if found is None:
                raise self.missing(tid)
            ticket, changed = found
            if expected_version is not None and ticket.version != expected_version:
                raise stale(tid, expected_version, ticket)
            read_version, read_lines = ticket.version, len(ticket.history)
            apply(ticket)
            if bump:
                ticket.version += 1
            if self._write(ticket, read_version, changed, read_lines):
                return ticket
            # another change came first: read it again (refused above if it was a person's)

    def _write(self, t: Ticket, version: int, changed: int, lines: int) -> bool:
        """Store ``t`` if the row is still the one read (``version``, ``changed``). Idempotent
        across retries: a key made before the first try marks the row written, so a try
        after one whose commit's answer was lost sees its own write (not someone else's)."""
        key = secrets.token_hex(16)

        def write(conn: psycopg.Connection) -> bool:
            done = conn.execute(UPDATE, (*columns(t), key, t.id, version, changed)).rowcount == 1
            if done:
                add_history(conn, history_rows(t, lines))
                return True
            return conn.execute("SELECT write_key = %s FROM tickets WHERE id = %s",
                                (key, t.id)).fetchone() == (True,)

        return self.store.run(write, "tickets")

    # -- the pass ------------------------------------------------------------------
    def tidy(self, rows: list[dict], keep: set[str]) -> int:
        """Nothing moves: a ticket leaves the open ones when it is final and its messages are
        queued (``working``, kept by every write)."""
        return 0

    def forget_sources_before(self, day: date) -> int:
        return self.store.run(lambda conn: conn.execute(
            "DELETE FROM ticket_sources WHERE day < %s", (day,)).rowcount, "tickets")
