"""Which status changes a ticket allows, as the 12345 and grid systems model them.

    open      -> assigned | rejected
    assigned  -> accepted | assigned | rejected      (assigned again: re-dispatched)
    accepted  -> resolved | assigned
    resolved  -> closed | reopened
    reopened  -> assigned | accepted
    closed    -> reopened
    rejected  (final)

Each target status is reached by one command (``tickets assign`` ...). A change
the status does not allow raises ``IllegalChange`` naming the allowed commands.
"""

from __future__ import annotations

from broadcaster.errors import InputError
from broadcaster.tickets.model import (
    ACCEPTED,
    ASSIGNED,
    CLOSED,
    OPEN,
    REJECTED,
    REOPENED,
    RESOLVED,
)

ALLOWED: dict[str, tuple[str, ...]] = {
    OPEN: (ASSIGNED, REJECTED),
    ASSIGNED: (ACCEPTED, ASSIGNED, REJECTED),
    ACCEPTED: (RESOLVED, ASSIGNED),
    RESOLVED: (CLOSED, REOPENED),
    REOPENED: (ASSIGNED, ACCEPTED),
    CLOSED: (REOPENED,),
    REJECTED: (),
}

# the command that moves a ticket to each status
COMMAND: dict[str, str] = {
    ASSIGNED: "assign", ACCEPTED: "accept", RESOLVED: "resolve", CLOSED: "close",
    REOPENED: "reopen", REJECTED: "reject",
}


class IllegalChange(InputError):
    """A change the ticket's status does not allow (exit 1)."""


def allowed(status: str) -> tuple[str, ...]:
    return ALLOWED[status]


def check(ticket_id: str, status: str, target: str) -> None:
    """Raise IllegalChange unless ``status -> target`` is allowed."""
    if target in ALLOWED[status]:
        return
    options = ALLOWED[status]
    if not options:
        raise IllegalChange(f"cannot {COMMAND[target]} {ticket_id}: it is {status}, "
                            "a final status (no change is allowed)")
    names = ", ".join(f"{COMMAND[s]} (-> {s})" for s in options)
    raise IllegalChange(f"cannot {COMMAND[target]} {ticket_id}: it is {status}; "
                        f"allowed: {names}")
