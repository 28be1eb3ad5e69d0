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
  (the open copy wins where a file store briefly has both).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import date, datetime

from broadcaster.errors import InputError, did_you_mean
from broadcaster.tickets import ids
from broadcaster.tickets.model import Ticket


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


class TicketStore(ABC):
    # -- reading -------------------------------------------------------------------
    @abstractmethod
    def find(self, ticket_id: str) -> Ticket | None:
        """The ticket with that number (any letter case), or None."""

    def get(self, ticket_id: str) -> Ticket:
        """``find``, or an InputError naming the number and the nearest open ones."""
        ticket = self.find(ticket_id)
        if ticket is None:
            if ids.parse_id(ticket_id) is None:
                raise InputError(f"{ticket_id!r} is not a ticket number (they look like "
                                 "GL-1123-0042; see: tickets list)")
            near = [t.id for t in self.open_tickets()]
            hint = did_you_mean(ids.normalize_id(ticket_id), near, " (see: tickets list)")
            raise InputError(f"no ticket {ticket_id!r}{hint}")
        return ticket

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

    def open_tickets(self, errors: list[str] | None = None) -> list[Ticket]:
        return [Ticket.from_record(r) for r in self.open_rows(errors)]

    @abstractmethod
    def archived_tickets(self, months: list[str] | None = None, *,
                         since: date | None = None) -> Iterator[Ticket]:
        """Archived tickets, optionally only those opened in the given ``YYYY-MM`` months.

        ``since``: a hint (see ``open_rows``): tickets opened before that day may be left out."""

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
        ``day`` is returned instead, ``(ticket, False)``.
        """

    @abstractmethod
    def change(self, ticket_id: str, apply: Callable[[Ticket], None], *,
               expected_version: int | None = None, bump: bool = True) -> Ticket:
        """Apply ``apply(ticket)`` to the ticket as stored now and store the result.

        ``expected_version``: refuse (StaleTicket) if someone changed it since.
        ``bump``: a change people make (new version); bookkeeping passes False.
        An unknown number raises InputError.
        """

    # -- the pass ------------------------------------------------------------------
    @abstractmethod
    def tidy(self, rows: list[dict], keep: set[str]) -> int:
        """Archive the closed and rejected tickets among ``rows`` (``open_rows``) but
        ``keep``, and finish moves a crash interrupted; returns how many moved."""

    @abstractmethod
    def forget_sources_before(self, day: date) -> int:
        """Forget which resident message opened which ticket, for days before ``day``."""
