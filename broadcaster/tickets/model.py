"""The ticket row: what is stored, what commands print, and what groups may see.

A ticket's ``version`` counts its changes (status, handler, deadline): a change
made against an older version is refused (see ``store.StaleTicket``).
Bookkeeping that no person makes — the messages still to be queued
(``notices``) — does not count as a change.

Privacy: staff see the reporter's name and the text; a group never does. Only
``mask_name`` output and the ticket's number, category, handler (masked),
deadline and result are given to templates that post to groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from broadcaster.timeparse import from_iso, iso

OPEN, ASSIGNED, ACCEPTED, RESOLVED = "open", "assigned", "accepted", "resolved"
CLOSED, REOPENED, REJECTED = "closed", "reopened", "rejected"
STATUSES = (OPEN, ASSIGNED, ACCEPTED, RESOLVED, CLOSED, REOPENED, REJECTED)
FINAL = frozenset({CLOSED, REJECTED})                        # archived by the next pass
ACTIVE = frozenset({OPEN, ASSIGNED, ACCEPTED, REOPENED})      # the clock runs: can be overdue

RESIDENT, SYSTEM = "resident", "system"                       # ``by`` when no person acted


def mask_name(name: str | None) -> str:
    """``赵大爷`` -> ``赵*``: the first character and one star; nothing -> ``居民``."""
    text = (name or "").strip()
    return f"{text[0]}*" if text else "居民"


@dataclass
class Change:
    """One line of a ticket's history: who did what, when, and why."""

    at: datetime
    by: str
    status: str
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "by": self.by, "status": self.status, "note": self.note}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Change:
        return cls(from_iso(d["at"]), d["by"], d["status"], d.get("note") or "")


@dataclass
class Ticket:
    id: str
    day: date                       # the day it was opened (its partition, and its number's MMDD)
    status: str
    category: str
    category_name: str
    urgent: bool
    group: str
    reporter: str
    reporter_id: str | None
    text: str
    staff: str | None
    created_at: datetime
    clock_from: datetime            # when the current deadline's clock started (opened, reopened)
    deadline: datetime
    version: int = 1
    history: list[Change] = field(default_factory=list)
    result: str | None = None
    source: str | None = None       # "platform:chat:message_id" of the resident's message
    notices: list[dict[str, Any]] = field(default_factory=list)  # queued once, then cleared
    unarchived: bool = False        # reopened from the archive: an old copy may remain there

    # -- what it is now -----------------------------------------------------------
    def overdue(self, now: datetime) -> bool:
        return self.status in ACTIVE and now >= self.deadline

    def changed_at(self, status: str) -> datetime | None:
        """When it last entered ``status``."""
        for change in reversed(self.history):
            if change.status == status:
                return change.at
        return None

    def add(self, at: datetime, by: str, status: str, note: str = "") -> None:
        self.status = status
        self.history.append(Change(at, by, status, note))

    # -- JSON (the contract) ------------------------------------------------------
    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "category": self.category,
            "category_name": self.category_name,
            "urgent": self.urgent,
            "group": self.group,
            "reporter": self.reporter,
            "reporter_id": self.reporter_id,
            "text": self.text,
            "staff": self.staff,
            "created_at": iso(self.created_at),
            "deadline": iso(self.deadline),
            "overdue": self.overdue(now),
            "result": self.result,
            "version": self.version,
            "history": [c.as_json() for c in self.history],
        }

    # -- storage -------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id, "day": self.day.isoformat(), "status": self.status,
            "category": self.category, "category_name": self.category_name,
            "urgent": self.urgent, "group": self.group, "reporter": self.reporter,
            "reporter_id": self.reporter_id, "text": self.text, "staff": self.staff,
            "created_at": iso(self.created_at), "clock_from": iso(self.clock_from),
            "deadline": iso(self.deadline), "version": self.version,
            "history": [c.as_json() for c in self.history], "result": self.result,
            "source": self.source, "notices": self.notices, "unarchived": self.unarchived,
        }

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Ticket:
        return cls(
            id=r["id"], day=date.fromisoformat(r["day"]), status=r["status"],
            category=r["category"], category_name=r["category_name"], urgent=r["urgent"],
            group=r["group"], reporter=r["reporter"], reporter_id=r.get("reporter_id"),
            text=r["text"], staff=r.get("staff"), created_at=from_iso(r["created_at"]),
            clock_from=from_iso(r["clock_from"]), deadline=from_iso(r["deadline"]),
            version=r["version"], history=[Change.from_json(c) for c in r["history"]],
            result=r.get("result"), source=r.get("source"), notices=list(r.get("notices") or []),
            unarchived=bool(r.get("unarchived")),
        )
