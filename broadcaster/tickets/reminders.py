"""The ticket pass, run by the daemon and ``run-once`` alike (see ``schedule.passes``).

Each full pass:

1. queues the messages a crash left on tickets (acknowledgements, handler
   notices, results: see ``desk``);
2. reminds the handler at 80 % of the time to the deadline;
3. tells the handler's supervisor (the handler, if there is none) once when a
   ticket is overdue — a ticket found overdue before its reminder went gets
   the alert only;
4. on working days, from ``defaults.tickets.digest_at`` for ``DIGEST_GRACE``,
   sends each staff member with open tickets one digest of them;
5. moves closed and rejected tickets to the archive, and forgets which message
   opened which ticket after ``SOURCES_KEEP``.

Each message once: it is queued under an outbox id derived from its key, then
the key is claimed in state ``ticket-notices``. A process that dies between the
two, or a second process (a daemon beside cron) doing the same, queues nothing twice.

Idle cost: state ``ticket-pass`` keeps the store's mark of the open tickets
(``TicketStore.open_mark``) and when something is next due; a pass that finds the mark
unchanged and nothing due reads nothing else. A full pass runs at least every
``FULL_EVERY`` all the same.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, time, timedelta

from broadcaster.timeparse import from_iso, iso

log = logging.getLogger(__name__)

STATE = "ticket-pass"
CLAIMS = "ticket-notices"
FULL_EVERY = timedelta(minutes=10)
RETRY_AFTER = timedelta(minutes=1)
DIGEST_GRACE = timedelta(hours=2)
CLAIMS_KEEP = timedelta(days=60)
SOURCES_KEEP = timedelta(days=30)   # a resident message's ticket number, for replays


def run(app, now: datetime | None = None) -> list[str]:
    """One ticket pass; returns what went wrong (it never raises: tickets stop only themselves)."""
    now = now or app.now()
    try:
        if not _wanted(app, now):
            return []
        return TicketPass(app, now).run()
    except Exception as exc:
        log.exception("ticket pass failed")
        return [f"tickets: {app.redact(exc)}"]


def _wanted(app, now: datetime) -> bool:
    """Whether a full pass is needed: tickets exist or may, and something changed or is due."""
    tickets = app.store.tickets()
    if not (app.root / "tickets.yaml").exists() and not tickets.kept():
        return False
    st = app.store.read_state(STATE)
    due = from_iso(st.get("next_due"))
    return st.get("mark") != tickets.open_mark() or due is None or now >= due


class TicketPass:
    def __init__(self, app, now: datetime):
        self.app = app
        self.now = now
        self.desk = app.tickets
        self.errors: list[str] = []
        self.claims = app.store.read_state(CLAIMS)
        self.claimed: dict[str, str] = {}
        self.next_due = now + FULL_EVERY

    def run(self) -> list[str]:
        store = self.desk.store
        rows = store.open_rows(self.errors)
        keep = self._leftovers(rows)
        by_staff = self._deadlines(rows)
        self._digests(by_staff)
        if self.claimed:
            self._claim()
        store.tidy(rows, keep)
        store.forget_sources_before((self.now - SOURCES_KEEP).date())
        with self.app.store.state(STATE) as st:
            st.update(mark=store.open_mark(), next_due=iso(self.next_due))
        return self.errors

    def _ticket(self, row: dict):
        """The ticket of a stored row (built only for the tickets a message is about)."""
        from broadcaster.tickets.model import Ticket  # start-up time: loaded when first used

        return Ticket.from_record(row)

    # -- 1. messages a crash left ---------------------------------------------------
    def _leftovers(self, rows: list[dict]) -> set[str]:
        keep = set()
        for row in rows:
            if row.get("notices") and self.desk.flush(self._ticket(row)).notices:
                keep.add(row["id"])          # not archived before its messages are queued
                self._soon()
        return keep

    # -- 2, 3. reminders and overdue alerts ----------------------------------------------
    def _deadlines(self, rows: list[dict]) -> dict[str, list]:
        """Queue the reminders and alerts due; the active rows by staff member."""
        from broadcaster.tickets.deadlines import reminder_at  # start-up time: loaded when first used
        from broadcaster.tickets.model import ACTIVE  # start-up time: loaded when first used

        by_staff: dict[str, list] = defaultdict(list)
        notices = self.desk.notices
        for r in rows:
            if r["status"] not in ACTIVE or not r.get("staff"):
                continue
            by_staff[r["staff"]].append(r)
            deadline = from_iso(r["deadline"])
            reminder_key = f"{r['id']}|reminder|{iso(deadline)}"
            overdue_key = f"{r['id']}|overdue|{iso(deadline)}"
            if self.now >= deadline:
                sent = self._send(overdue_key, lambda r=r, k=overdue_key, d=deadline:
                                  notices.overdue(self._ticket(r), k, d))
                if sent and reminder_key not in self.claims:   # too late to remind
                    self.claimed.setdefault(reminder_key, iso(self.now))
                continue
            remind = reminder_at(from_iso(r["clock_from"]), deadline)
            if self.now >= remind:
                self._send(reminder_key, lambda r=r, k=reminder_key, w=remind:
                           notices.reminder(self._ticket(r), k, w))
            else:
                self.next_due = min(self.next_due, remind)
            self.next_due = min(self.next_due, deadline)
        return by_staff

    # -- 4. the morning digest ---------------------------------------------------------------
    def _digests(self, by_staff: dict[str, list]) -> None:
        from broadcaster.tickets.deadlines import is_workday  # start-up time: loaded when first used

        staff = self.desk.staff
        local = self.now.astimezone(self.app.tz)
        at = _at(local.date(), staff.digest_at, local.tzinfo)
        if is_workday(local.date()) and at <= local < at + DIGEST_GRACE:
            for staff_id, items in sorted(by_staff.items()):
                member = staff.by_id.get(staff_id)
                if member is None:
                    continue
                tickets = sorted((self._ticket(r) for r in items),
                                 key=lambda t: (not t.overdue(self.now), t.deadline))
                key = f"digest|{staff_id}|{local.date().isoformat()}"
                self._send(key, lambda m=member, ts=tickets, k=key:
                           self.desk.notices.digest(m, ts, k, at))
        self.next_due = min(self.next_due, _next_digest(local, staff.digest_at))

    # -- claims ------------------------------------------------------------------------------
    def _send(self, key: str, send) -> bool:
        """Queue one message (``send()``) unless ``key`` was claimed; True once it is queued
        (or moot)."""
        if key in self.claims:
            return True
        try:
            send()
        except Exception as exc:  # one ticket's message must not stop the others
            log.error("ticket message %s not queued: %s", key, self.app.redact(exc))
            self.errors.append(f"tickets: {key}: {self.app.redact(exc)}")
            self._soon()
            return False
        self.claimed[key] = iso(self.now)
        return True

    def _claim(self) -> None:
        cutoff = iso(self.now - CLAIMS_KEEP)
        with self.app.store.state(CLAIMS) as st:
            st.update(self.claimed)
            for key in [k for k, v in st.items() if v < cutoff]:
                del st[key]

    def _soon(self) -> None:
        self.next_due = min(self.next_due, self.now + RETRY_AFTER)


def _at(day, hhmm: time, tz) -> datetime:
    return datetime.combine(day, hhmm, tzinfo=tz)


def _next_digest(local: datetime, hhmm: time) -> datetime:
    """The first digest time after ``local`` on a working day."""
    from broadcaster.tickets.deadlines import is_workday  # start-up time: loaded when first used

    day = local.date()
    for _ in range(60):
        at = _at(day, hhmm, local.tzinfo)
        if at > local and is_workday(day):
            return at
        day += timedelta(days=1)
    return local + timedelta(days=1)
