"""Tickets and their history, as the installation's store keeps them (``Store.tickets()``).

``TicketStore`` is the interface; ``broadcaster.store.filetickets`` keeps
tickets in day files under the state directory (the embedded store),
``broadcaster.store.pgtickets`` in the tables ``tickets`` and
``ticket_history`` (PostgreSQL). Both promise:

- ``create`` numbers a ticket (``ids``: prefix, MMDD, a sequence never given
  twice, across machines too) and stores it durably; opening from one
  resident message (``source``) is idempotent for that day;
- ``change(id, apply, expected_version=v)`` applies ``apply`` only if the
  ticket is still at version ``v``, else raises ``StaleTicket`` ("changed since
  you read it"): of two staff changing one ticket, one wins, the other is told;
  nothing a change writes is lost to another change made at the same time;
- ``open_rows`` are the tickets being worked on (plus closed ones whose
  messages are still to be queued); ``archived_tickets`` the closed and
  rejected ones, by the month they were opened. A ticket is in one of the two
  (the open copy wins where a file store briefly has both: ``every_row``);
- ``figures`` counts what ``stats`` reports of them, without building tickets
  (a database by one query).
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from broadcaster.errors import InputError, did_you_mean
from broadcaster.tickets import ids
from broadcaster.tickets.model import ACTIVE, RESOLVED, Ticket
from broadcaster.timeparse import from_iso

if TYPE_CHECKING:
    from broadcaster.store.base import Store

T = TypeVar("T")


class StaleTicket(InputError):
    """The ticket changed between reading it and writing the change (exit 1)."""


def stale(tid: str, expected_version: int, now: Ticket) -> StaleTicket:
    """The refusal of a change made against ``expected_version`` of a ticket now at ``now``."""
    last = now.history[-1] if now.history else None
    what = f": {last.status} by {last.by} at {last.at:%Y-%m-%d %H:%M}" if last else ""
    return StaleTicket(f"ticket {tid} changed since you read it (version "
                       f"{expected_version}, now {now.version}{what}); "
                       f"see: tickets show {tid}, then try again")


def no_ticket(tid: str) -> InputError:
    return InputError(f"no ticket {tid!r} (see: tickets list)")


def months_between(since: datetime | date, until: datetime | date) -> list[str]:
    """The ``YYYY-MM`` months from ``since``'s to ``until``'s, both included."""
    months, cur = [], date(since.year, since.month, 1)
    while (cur.year, cur.month) <= (until.year, until.month):
        months.append(f"{cur:%Y-%m}")
        cur = (cur + timedelta(days=32)).replace(day=1)
    return months


def open_copy_wins(opened: list[T], archived: Iterable[T], number: Callable[[T], str]
                   ) -> Iterator[T]:
    """``opened``, then the ``archived`` ones whose ``number`` is not among them (each
    ticket once: see ``TicketStore.every_row``)."""
    seen = {number(x) for x in opened}
    yield from opened
    for x in archived:
        if number(x) not in seen:
            seen.add(number(x))
            yield x


@dataclass
class Counts:
    """Work orders of a window, in one grid or in all: opened in it, resolved in it (when
    they last entered ``resolved``), overdue at its end, and the median handling time
    (seconds from opening to that resolution; None when none was resolved)."""

    opened: int = 0
    resolved: int = 0
    overdue: int = 0
    handling_s: float | None = None


@dataclass
class Figures:
    """``TicketStore.figures``: the totals, by grid (every grid with a ticket counted in
    it, even at zero), and the tickets opened in the window by their status now."""

    total: Counts = field(default_factory=Counts)
    by_grid: dict[str, Counts] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)


class TicketStore(ABC):
    store: Store        # the installation's store (``damaged()``: what was set aside)

    # -- reading -------------------------------------------------------------------
    @abstractmethod
    def find(self, ticket_id: str) -> Ticket | None:
        """The ticket with that number (any letter case), or None."""

    def get(self, ticket_id: str) -> Ticket:
        """``find``, or an InputError naming the number and the nearest open ones (or where
        it was set aside, if it was damaged)."""
        ticket = self.find(ticket_id)
        if ticket is None:
            if ids.parse_id(ticket_id) is None:
                raise InputError(f"{ticket_id!r} is not a ticket number (they look like "
                                 "GL-1123-0042; see: tickets list)")
            raise self.missing(ids.normalize_id(ticket_id), ticket_id)
        return ticket

    def missing(self, tid: str, asked: str | None = None) -> InputError:
        """Why there is no ticket ``tid``: it was damaged and set aside (where, why), or there
        is none (the nearest open numbers named)."""
        aside = [d for d in self.store.damaged() if d.name == f"ticket {tid}"]
        if aside:
            return InputError(f"ticket {tid} is damaged and was set aside as {aside[-1].path} "
                              f"({aside[-1].reason})")
        hint = did_you_mean(tid, [t.id for t in self.open_tickets()], " (see: tickets list)")
        return InputError(f"no ticket {asked or tid!r}{hint}")

    @abstractmethod
    def open_rows(self, errors: list[str] | None = None, *, status: str | None = None,
                  staff: str | None = None, category: str | None = None,
                  overdue_at: datetime | None = None) -> list[dict]:
        """The open tickets as stored rows (``Ticket.to_record``'s form): filters that read
        a few fields of 10,000 tickets need not build them all. A part that cannot be read
        raises StoreError, or with ``errors`` is named there and skipped.

        ``status``, ``staff``, ``category``, ``overdue_at`` (active and due by then) are
        hints: a store may leave out the rows they exclude (a database, by its indexes) or
        return them all; the caller filters again."""

    def open_tickets(self, errors: list[str] | None = None, *, status: str | None = None,
                     staff: str | None = None, category: str | None = None,
                     overdue_at: datetime | None = None,
                     where: Callable[[dict], bool] | None = None) -> list[Ticket]:
        """The tickets of ``open_rows`` (same hints) whose row passes ``where`` (all without
        it), built from their rows; a store that builds each row anyway to read it hands
        back those tickets."""
        return [Ticket.from_record(r) for r in self.open_rows(
            errors, status=status, staff=staff, category=category, overdue_at=overdue_at)
            if where is None or where(r)]

    @abstractmethod
    def archived_rows(self, months: list[str] | None = None, *,
                      since: date | None = None) -> Iterator[dict]:
        """Archived tickets as stored rows, optionally only those opened in the given
        ``YYYY-MM`` months.

        ``since``: a hint (see ``open_rows``): tickets opened before that day may be left out."""

    def archived_tickets(self, months: list[str] | None = None, *,
                         since: date | None = None) -> Iterator[Ticket]:
        return (Ticket.from_record(r) for r in self.archived_rows(months, since=since))

    def every_row(self, months: list[str] | None = None, *, status: str | None = None,
                  since: date | None = None) -> Iterator[dict]:
        """Open and archived tickets' rows (archived in ``months`` only, if given), each
        once: where a ticket is in both (reopened from the archive, or archived by a move a
        crash cut short), the open copy wins.

        ``status``, ``since``: hints (see ``open_rows``); the caller filters again."""
        yield from open_copy_wins(self.open_rows(status=status),
                                  self.archived_rows(months, since=since), lambda r: r["id"])

    def every_ticket(self, months: list[str] | None = None, *, status: str | None = None,
                     since: date | None = None) -> Iterator[Ticket]:
        """``every_row``'s tickets."""
        return (Ticket.from_record(r) for r in self.every_row(months, status=status, since=since))

    def figures(self, start: datetime, end: datetime, grids: Mapping[str, str],
                unknown: str) -> Figures:
        """What ``stats`` counts of the tickets from ``start`` to ``end`` (both included):
        ``Counts`` in all and by grid (``grids``: a group's grid; ``unknown`` for a group
        not in it), over the open tickets and those archived in the months the window
        touches.

        This one reads each row once, building no ticket; a database counts in one query."""
        figures = Figures()
        handling: dict[str, list[int]] = {}
        for row in self.every_row(months_between(start, end)):
            grid = grids.get(row["group"], unknown)
            counts = figures.by_grid.get(grid) or figures.by_grid.setdefault(grid, Counts())
            created = from_iso(row["created_at"])
            if start <= created <= end:
                counts.opened += 1
                figures.by_status[row["status"]] = figures.by_status.get(row["status"], 0) + 1
            resolved = next((from_iso(c["at"]) for c in reversed(row["history"])
                             if c["status"] == RESOLVED), None)
            if resolved is not None and start <= resolved <= end:
                counts.resolved += 1
                handling.setdefault(grid, []).append(int((resolved - created).total_seconds()))
            if row["status"] in ACTIVE and end >= from_iso(row["deadline"]):
                counts.overdue += 1
        every: list[int] = []
        for grid, counts in figures.by_grid.items():
            seconds = handling.get(grid, [])
            counts.handling_s = statistics.median(seconds) if seconds else None
            every += seconds
            for name in ("opened", "resolved", "overdue"):
                setattr(figures.total, name, getattr(figures.total, name) + getattr(counts, name))
        figures.total.handling_s = statistics.median(every) if every else None
        return figures

    @abstractmethod
    def kept(self) -> bool:
        """Whether this store ever kept a ticket (cheap: the idle pass asks)."""

    @abstractmethod
    def open_mark(self) -> int:
        """A number that changes whenever an open ticket is written (cheap)."""

    # -- writing -------------------------------------------------------------------
    @abstractmethod
    def create(self, day: date, prefix: str, build: Callable[[str], Ticket],
               source: str | None = None) -> tuple[Ticket, bool]:
        """Number and store the ticket ``build(id)`` returns; ``(ticket, True)``.

        With ``source`` (one resident message), a ticket already opened from it on
        ``day`` is returned instead, ``(ticket, False)``. A store that retries after a
        lost answer returns the ticket its first try made, never numbers a second.
        """

    @abstractmethod
    def change(self, ticket_id: str, apply: Callable[[Ticket], None], *,
               expected_version: int | None = None, bump: bool = True) -> Ticket:
        """Apply ``apply(ticket)`` to the ticket as stored now and store the result.

        ``expected_version``: refuse (StaleTicket) if someone changed it since.
        ``bump``: a change people make (new version); bookkeeping passes False.
        An unknown number raises InputError. A store that retries after a lost answer
        recognises its own write: neither refused as stale nor applied twice.
        """

    # -- the pass ------------------------------------------------------------------
    @abstractmethod
    def tidy(self, rows: list[dict], keep: set[str]) -> int:
        """Archive the closed and rejected tickets among ``rows`` (``open_rows``) but
        ``keep``, and finish moves a crash interrupted; returns how many moved."""

    @abstractmethod
    def forget_sources_before(self, day: date) -> int:
        """Forget which resident message opened which ticket, for days before ``day``."""
