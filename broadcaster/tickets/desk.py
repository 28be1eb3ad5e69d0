"""Opening and changing tickets: what the commands, the intake and the pass call.

``Desk(app)`` holds one root's categories (``tickets.yaml``), its staff
(``groups.yaml``) and the ticket store. Every change:

1. reads the ticket and checks the change is allowed (``states``);
2. applies it under the store lock, only if the ticket is still the version
   read (else "changed since you read it"), recording who, when and a note,
   and leaving on the ticket the messages the change calls for;
3. queues those messages through the outbox (idempotent ids) and clears them.

A crash between 2 and 3 leaves the messages on the ticket; the next pass
(``reminders``) queues them, once.
"""

from __future__ import annotations

import getpass
import logging
import os
from datetime import datetime
from functools import cached_property

from broadcaster.config.groups import Group
from broadcaster.errors import InputError, did_you_mean
from broadcaster.tickets import deadlines, ids, matching, notices, states
from broadcaster.tickets.model import (
    ASSIGNED,
    OPEN,
    REJECTED,
    REOPENED,
    RESOLVED,
    SYSTEM,
    Ticket,
)
from broadcaster.tickets.store import TicketStore

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000          # characters of a complaint kept
NOTE_LIMIT = 500


def login_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


class Desk:
    def __init__(self, app):
        self.app = app

    @cached_property
    def config(self):
        """``tickets.yaml`` (None when the root has none)."""
        from broadcaster.config.tickets import load_tickets  # start-up time: loaded when first used

        return load_tickets(self.app.root)

    @cached_property
    def store(self) -> TicketStore:
        return self.app.store.tickets()

    @cached_property
    def notices(self) -> notices.Notices:
        return notices.Notices(self.app)

    @property
    def staff(self):
        return self.app.groups.staff

    def require_config(self):
        if self.config is None:
            raise InputError(f"no tickets.yaml in {self.app.root}: it lists the complaint "
                             "categories (see README, 'Work orders')")
        return self.config

    def actor(self, by: str | None) -> str:
        """Who makes a change: ``--by STAFF`` (a staff id), else the login user."""
        if by is None:
            return login_user()
        return self.staff.get(by).id

    def group(self, group_id: str) -> Group:
        group = self.app.groups.by_id.get(group_id)
        if group is None:
            hint = did_you_mean(group_id, self.app.groups.by_id, " (see: groups list)")
            raise InputError(f"no group with id {group_id!r}{hint}")
        return group

    # -- opening ---------------------------------------------------------------------
    def open(self, group: Group, text: str, *, by: str, reporter: str,
             reporter_id: str | None = None, category: str | None = None,
             urgent: bool | None = None, source: str | None = None,
             at: datetime | None = None) -> tuple[Ticket, bool]:
        """Open a ticket (or, for a ``source`` seen before, return its ticket): ``(ticket, new)``."""
        config = self.require_config()
        text = (text or "").strip()[:TEXT_LIMIT]
        if not text:
            raise InputError("a ticket needs the complaint's text")
        cat, is_urgent = self._category(config, text, category, urgent)
        handler, why = self.staff.handler_for(group)
        start = (at or self.app.now()).astimezone(self.app.tz)
        deadline = deadlines.deadline_after(cat.deadline_for(is_urgent), start)
        where = source or f"opened from the terminal by {by}"

        def build(ticket_id: str) -> Ticket:
            t = Ticket(id=ticket_id, day=start.date(), status=OPEN, category=cat.id,
                       category_name=cat.name, urgent=is_urgent, group=group.id,
                       reporter=reporter.strip()[:64] or "居民", reporter_id=reporter_id,
                       text=text, staff=None, created_at=start, clock_from=start,
                       deadline=deadline, source=source)
            t.add(start, by, OPEN, where)
            t.notices.append(notices.pending(notices.ACK, t, start))
            if handler is not None:
                t.staff = handler.id
                t.add(start, SYSTEM, ASSIGNED, f"{handler.id} ({why})")
                t.notices.append(notices.pending(notices.ASSIGNED, t, start, handler.id))
            return t

        prefix = ids.prefix_for(group.tags, config.prefix)
        ticket, new = self.store.create(start.date(), prefix, build, source)
        if new:
            ticket = self.flush(ticket)
        return ticket, new

    @staticmethod
    def _category(config, text: str, category: str | None, urgent: bool | None):
        if category is not None:
            cat = config.by_id.get(category)
            if cat is None:
                raise InputError(f"no category {category!r} in tickets.yaml"
                                 f"{did_you_mean(category, config.by_id, '')} "
                                 f"(known: {', '.join(config.by_id)})")
            return cat, matching.is_urgent(cat, text) if urgent is None else urgent
        found = matching.match(config, text)
        if found is None:
            raise InputError("the text matches no category's keywords; give --category "
                             f"(known: {', '.join(config.by_id)})")
        return found.category, found.urgent if urgent is None else (urgent or found.urgent)

    # -- changing --------------------------------------------------------------------
    def change(self, ticket_id: str, target: str, *, by: str, note: str = "",
               staff: str | None = None, result: str | None = None,
               expected_version: int | None = None) -> Ticket:
        """Move a ticket to ``target`` (one of the statuses a command reaches)."""
        read = self.store.get(ticket_id)
        states.check(read.id, read.status, target)
        member = self.staff.get(staff) if staff is not None else None
        if target == ASSIGNED and member is None:
            raise InputError("assign needs the staff member's id")
        note = (note or "").strip()[:NOTE_LIMIT]
        if target in (REOPENED, REJECTED) and not note:
            raise InputError(f"{states.COMMAND[target]} needs --reason")
        if target == RESOLVED and not (result or "").strip():
            raise InputError("resolve needs --result: what was done")
        now = self.app.now()

        def apply(t: Ticket) -> None:
            states.check(t.id, t.status, target)   # the locked copy: same version, same status
            self._apply(t, target, now, by, note, member, result)

        version = read.version if expected_version is None else expected_version
        ticket = self.store.change(read.id, apply, expected_version=version)
        return self.flush(ticket)

    def _apply(self, t: Ticket, target: str, now: datetime, by: str, note: str, member,
               result: str | None) -> None:
        if target == ASSIGNED:
            t.staff = member.id
            t.add(now, by, ASSIGNED, note or f"to {member.id}")
            t.notices.append(notices.pending(notices.ASSIGNED, t, now, member.id))
        elif target == RESOLVED:
            t.result = result.strip()[:TEXT_LIMIT]
            t.add(now, by, RESOLVED, note or t.result)
            t.notices.append(notices.pending(notices.RESOLVED, t, now))
        elif target == REOPENED:
            category = (self.config.by_id.get(t.category) if self.config else None)
            if category is not None:   # a new clock: the category's deadline from now
                t.clock_from = now
                t.deadline = deadlines.deadline_after(category.deadline_for(t.urgent), now)
            t.add(now, by, REOPENED, note)
            if t.staff:
                t.notices.append(notices.pending(notices.ASSIGNED, t, now, t.staff))
        else:   # accepted, closed, rejected
            t.add(now, by, target, note)

    # -- messages a change left -------------------------------------------------------------
    def flush(self, ticket: Ticket) -> Ticket:
        """Queue the messages ``ticket`` still carries, then clear them (bookkeeping only)."""
        if not ticket.notices:
            return ticket
        done = []
        for notice in ticket.notices:
            try:
                self.notices.send_pending(ticket, notice)
            except Exception as exc:   # the ticket stands; the pass tries the message again
                log.error("ticket %s: message %s not queued: %s", ticket.id, notice["key"],
                          self.app.redact(exc))
                continue
            done.append(notice["key"])
        if not done:
            return ticket

        def clear(t: Ticket) -> None:
            t.notices = [n for n in t.notices if n["key"] not in done]

        return self.store.change(ticket.id, clear, bump=False)

