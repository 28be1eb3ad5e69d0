"""Resident messages become tickets: what the inbound server calls for each message.

``open_from_message(app, msg)`` takes one resident message (an
``InboundMessage``, or any object with its attributes: ``platform``, ``chat``,
``group_id``, ``message_id``, ``sender_id``, ``sender_name``, ``text``,
``addressed``, ``is_bot``, ``received_at``, ``reply_route``) and, when its text
matches a category of ``tickets.yaml``, opens a ticket: assigned to the first
staff member whose ``covers`` match the group (else the fallback, else left
``open``), the handler's notice and the group's acknowledgement queued through
the outbox. It returns the ticket, or None when the message opens none (no
tickets.yaml, no matching keyword, a bot, an unknown group).

Idempotent per message: a platform retrying the same message id gets the same
ticket back, and nothing is queued twice. A message that is both a question and
a complaint should be handed here first: complaints win over FAQ answers.
"""

from __future__ import annotations

import logging
from datetime import datetime

from broadcaster.errors import InputError
from broadcaster.tickets.model import RESIDENT, Ticket

log = logging.getLogger(__name__)


def open_from_message(app, msg) -> Ticket | None:
    if getattr(msg, "is_bot", False) or not (getattr(msg, "text", "") or "").strip():
        return None
    desk = app.tickets
    config = desk.config
    if config is None:
        return None
    group = app.groups.by_id.get(msg.group_id or "")
    if group is None:
        log.info("inbound message %s: group %r unknown, no ticket", msg.message_id, msg.group_id)
        return None
    from broadcaster.tickets.matching import match  # start-up time: loaded when first used

    found = match(config, msg.text)
    if found is None:
        return None
    chat = msg.chat if str(msg.chat).startswith(f"{msg.platform}:") else f"{msg.platform}:{msg.chat}"
    source = f"{chat}:{msg.message_id}"      # generic:hlz-g01:m-77
    try:
        ticket, new = desk.open(group, msg.text, by=RESIDENT, reporter=msg.sender_name or "",
                                reporter_id=str(msg.sender_id) if msg.sender_id else None,
                                category=found.category.id, urgent=found.urgent,
                                source=source, at=_received(app, msg.received_at))
    except InputError as exc:
        log.warning("inbound message %s: no ticket: %s", msg.message_id, exc)
        return None
    if new:
        log.info("ticket %s opened from %s (%s%s)", ticket.id, source, found.category.id,
                 ", urgent" if found.urgent else "")
    return ticket


def _received(app, value) -> datetime:
    """When the resident wrote (a datetime, ISO text or epoch seconds); never after now."""
    now = app.now()
    if value is None:
        return now
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, app.tz)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=app.tz)
    return min(value, now)
