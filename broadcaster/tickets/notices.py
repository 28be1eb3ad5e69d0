"""Every message about a ticket, rendered from its template and queued through the outbox once.

==================  ============================================  ================================
template            goes to                                       when
==================  ============================================  ================================
``ticket_ack``      the resident's group                          the ticket is opened
``ticket_assigned`` the handler's own channel                     assigned, re-assigned, reopened
``ticket_reminder`` the handler                                   at 80 % of the time to the deadline
``ticket_overdue``  the handler's supervisor (else the handler)   once, when the deadline passes
``ticket_digest``   each staff member with open tickets           working mornings at ``digest_at``
``ticket_resolved`` the resident's group                          resolved
==================  ============================================  ================================

Each message has a key (the ticket, what, and which change, deadline or day);
its outbox id is derived from the key (``outbox.stable_id``), so queuing it
again — after a crash, or from a second process — queues nothing new.

What a group sees is built here and nowhere else: the ticket's number,
category, the handler's and reporter's names masked (王*), the deadline and
the result. A ticket's text and the reporter's name go only to staff. Every
text that came from a person is made inert (``sources.safe_text``).

The six template kinds are declared at the end (fields, samples, who uses them).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from broadcaster.queue.outbox import Message, enqueue, stable_id
from broadcaster.sources import safe_text
from broadcaster.sources.kinds import TemplateKind, register_template, sample_at
from broadcaster.tickets.model import Ticket, mask_name
from broadcaster.timeparse import iso

log = logging.getLogger(__name__)

ACK, ASSIGNED, REMINDER = "ticket_ack", "ticket_assigned", "ticket_reminder"
OVERDUE, DIGEST, RESOLVED = "ticket_overdue", "ticket_digest", "ticket_resolved"
TEMPLATES = (ACK, ASSIGNED, REMINDER, OVERDUE, DIGEST, RESOLVED)
TEXT_LIMIT = 500
NAME_LIMIT = 32
DIGEST_EXPIRY = timedelta(hours=12)


# -- what templates receive -------------------------------------------------------------

def _masked(name: str | None) -> str:
    return safe_text(mask_name(name), html_input=False)


def ack_view(ticket: Ticket, handler_name: str | None) -> dict[str, Any]:
    """``ticket`` for ``ticket_ack``: nothing a group may not see."""
    return {"id": ticket.id, "category": ticket.category_name, "urgent": ticket.urgent,
            "reporter": _masked(ticket.reporter),
            "handler": _masked(handler_name) if handler_name else None,
            "deadline": ticket.deadline, "created_at": ticket.created_at}


def resolved_view(ticket: Ticket, handler_name: str | None) -> dict[str, Any]:
    """``ticket`` for ``ticket_resolved``: the result, never the complaint's text."""
    return {"id": ticket.id, "category": ticket.category_name,
            "reporter": _masked(ticket.reporter),
            "handler": _masked(handler_name) if handler_name else None,
            "created_at": ticket.created_at, "resolved_at": ticket.changed_at("resolved"),
            "result": safe_text(ticket.result or "", limit=TEXT_LIMIT, html_input=False)}


def staff_view(ticket: Ticket, group_name: str, now: datetime) -> dict[str, Any]:
    """``ticket`` for staff: the whole complaint."""
    note = ticket.history[-1].note if ticket.history else ""
    return {"id": ticket.id, "category": ticket.category_name, "urgent": ticket.urgent,
            "status": ticket.status,
            "text": safe_text(ticket.text, limit=TEXT_LIMIT, html_input=False),
            "reporter": safe_text(ticket.reporter, limit=NAME_LIMIT, html_input=False),
            "group_name": group_name, "created_at": ticket.created_at,
            "deadline": ticket.deadline, "overdue": ticket.overdue(now),
            "note": safe_text(note, limit=TEXT_LIMIT, html_input=False)}


def person(member) -> dict[str, str]:
    return {"id": member.id, "name": member.name}


# -- queuing -----------------------------------------------------------------------------

class Notices:
    """Renders and queues ticket messages for one App."""

    def __init__(self, app):
        self.app = app

    @property
    def staff(self):
        return self.app.groups.staff

    def group_name(self, group_id: str) -> str:
        group = self.app.groups.by_id.get(group_id)
        return group.name if group else group_id

    def _queue(self, template: str, *, to: str, context_group, data: dict, key: str,
               when: datetime, urgent: bool, expires: timedelta | None = None) -> str | None:
        """Render ``template`` for destination ``to`` and queue it under ``key`` (idempotent)."""
        app = self.app
        destination = app.groups.destination(to)
        if destination is None or context_group is None:
            log.warning("ticket message %s not queued: %s is not in groups.yaml", key, to)
            return None
        now = app.now()
        body = app.templates.render(template, group=context_group, data=data,
                                    now=now.astimezone(context_group.tz),
                                    channel=destination.channel_type)
        extra = {"expires": expires} if expires else {}
        return enqueue(app, [Message(to, body)], source=f"ticket:{key}", urgent=urgent,
                       ann_id=stable_id(key, when), **extra)

    # -- the messages a change leaves on the ticket (see desk) ---------------------------------
    def send_pending(self, ticket: Ticket, notice: dict[str, Any]) -> str | None:
        kind, key, when = notice["kind"], notice["key"], datetime.fromisoformat(notice["at"])
        group = self.app.groups.by_id.get(ticket.group)
        handler = self.staff.by_id.get(ticket.staff) if ticket.staff else None
        if kind == ACK:
            return self._queue(ACK, to=ticket.group, context_group=group, key=key, when=when,
                               data={"ticket": ack_view(ticket, handler and handler.name)},
                               urgent=True)   # a reply: quiet hours do not hold it
        if kind == RESOLVED:
            return self._queue(RESOLVED, to=ticket.group, context_group=group, key=key,
                               when=when, urgent=False,
                               data={"ticket": resolved_view(ticket, handler and handler.name)})
        member = self.staff.by_id.get(notice.get("staff") or "")
        if kind == ASSIGNED and member is not None:
            data = {"ticket": staff_view(ticket, self.group_name(ticket.group), self.app.now()),
                    "staff": person(member)}
            return self._queue(ASSIGNED, to=member.destination, context_group=group, key=key,
                               when=when, data=data, urgent=ticket.urgent)
        log.warning("ticket message %s dropped: no staff member %r", key, notice.get("staff"))
        return None

    # -- the pass's messages ---------------------------------------------------------------
    def reminder(self, ticket: Ticket, key: str, when: datetime) -> str | None:
        member = self.staff.by_id.get(ticket.staff or "")
        if member is None:
            return None
        data = {"ticket": staff_view(ticket, self.group_name(ticket.group), self.app.now()),
                "staff": person(member)}
        return self._queue(REMINDER, to=member.destination, key=key, when=when, data=data,
                           context_group=self.app.groups.by_id.get(ticket.group),
                           urgent=ticket.urgent)

    def overdue(self, ticket: Ticket, key: str, when: datetime) -> str | None:
        staff = self.staff.by_id
        handler = staff.get(ticket.staff or "")
        if handler is None:
            return None
        boss = staff.get(handler.supervisor or "") or handler
        data = {"ticket": staff_view(ticket, self.group_name(ticket.group), self.app.now()),
                "staff": person(handler), "supervisor": person(boss)}
        return self._queue(OVERDUE, to=boss.destination, key=key, when=when, data=data,
                           context_group=self.app.groups.by_id.get(ticket.group), urgent=True)

    def digest(self, member, tickets: list[Ticket], key: str, when: datetime) -> str | None:
        now = self.app.now()
        views = [staff_view(t, self.group_name(t.group), now) for t in tickets]
        data = {"staff": person(member), "tickets": views}
        return self._queue(DIGEST, to=member.destination, key=key, when=when, data=data,
                           context_group=self.app.groups.destination(member.destination),
                           urgent=False, expires=DIGEST_EXPIRY)


def pending(kind: str, ticket: Ticket, at: datetime, staff: str | None = None) -> dict[str, Any]:
    """A message a change leaves to be queued; its key names the change (the history line)."""
    return {"kind": kind, "key": f"{ticket.id}|{kind}|{len(ticket.history)}", "at": iso(at),
            "staff": staff}


# -- the template kinds -------------------------------------------------------------------

_TICKET_FOR_STAFF = ("id", "category", "urgent", "status", "text", "reporter", "group_name",
                     "created_at", "deadline", "overdue", "note")
_STAFF_TICKET = ("ticket", *(f"ticket.{f}" for f in _TICKET_FOR_STAFF))
_STAFF = {"id": "wang-li", "name": "王丽"}
_SUPERVISOR = {"id": "zhang-hua", "name": "张华"}


def _person(name: str) -> tuple[str, ...]:
    return (name, f"{name}.id", f"{name}.name")


def _staff_ticket(now: datetime, seq: int, text: str, **over: Any) -> dict[str, Any]:
    return {
        "id": f"GL-{now:%m%d}-{seq:04d}", "category": "卫生", "urgent": False,
        "status": "assigned", "text": text, "reporter": "赵大爷",
        "group_name": "汇林绿洲社区第1网格群", "created_at": sample_at(now, 0, 9, 12),
        "deadline": sample_at(now, 2, 9, 12), "overdue": False,
        "note": "wang-li (covers community:huilinlvzhou)", **over,
    }


def _sample_ticket(now: datetime) -> dict[str, Any]:
    return _staff_ticket(now, 42, "3栋2单元楼道里的垃圾三天没人清了，味道很大，麻烦尽快处理。")


def _ack_sample(now: datetime, **_: Any) -> dict[str, Any]:
    return {"ticket": {"id": _sample_ticket(now)["id"], "category": "卫生", "urgent": False,
                       "reporter": "赵\\*", "handler": "王\\*",
                       "deadline": sample_at(now, 2, 9, 12), "created_at": sample_at(now, 0, 9, 12)}}


def _resolved_sample(now: datetime, **_: Any) -> dict[str, Any]:
    return {"ticket": {"id": _sample_ticket(now)["id"], "category": "卫生", "reporter": "赵\\*",
                       "handler": "王\\*", "created_at": sample_at(now, 0, 9, 12),
                       "resolved_at": sample_at(now, 1, 15, 40),
                       "result": "楼道垃圾已清运，已联系物业每天上午、下午各清理一次。"}}


def _digest_sample(now: datetime, **_: Any) -> dict[str, Any]:
    return {"staff": dict(_STAFF), "tickets": [
        _staff_ticket(now, 17, "小区东门路灯不亮，晚上出入很不方便。", category="设施报修",
                      status="accepted", urgent=True, overdue=True,
                      created_at=sample_at(now, -1, 20, 5), deadline=sample_at(now, -1, 23, 5),
                      note="", reporter="钱阿姨"),
        _sample_ticket(now),
        _staff_ticket(now, 45, "5栋楼下绿化带的树枝挡住了路，老人走路不方便。",
                      category="绿化", deadline=sample_at(now, 3, 10, 30), reporter="孙师傅"),
    ]}


def _assigned_sample(now: datetime, **_: Any) -> dict[str, Any]:
    return {"ticket": _sample_ticket(now), "staff": dict(_STAFF)}


def _reminder_sample(now: datetime, **_: Any) -> dict[str, Any]:
    return {"ticket": {**_sample_ticket(now), "status": "accepted", "note": ""},
            "staff": dict(_STAFF)}


def _overdue_sample(now: datetime, **_: Any) -> dict[str, Any]:
    ticket = {**_sample_ticket(now), "status": "accepted", "overdue": True, "note": "",
              "created_at": sample_at(now, -3, 9, 12), "deadline": sample_at(now, -1, 9, 12)}
    return {"ticket": ticket, "staff": dict(_STAFF), "supervisor": dict(_SUPERVISOR)}


# groups see only what the ack and the result show (names masked, no text)
KINDS = tuple(register_template(kind) for kind in (
    TemplateKind(ACK, data=("ticket",), sample=_ack_sample,
                 fields=("ticket", *(f"ticket.{f}" for f in (
                     "id", "category", "urgent", "reporter", "handler", "deadline", "created_at"))),
                 used_by="tickets (to the resident's group)"),
    TemplateKind(ASSIGNED, data=("ticket", "staff"), sample=_assigned_sample,
                 fields=(*_STAFF_TICKET, *_person("staff")), used_by="tickets (to the handler)"),
    TemplateKind(REMINDER, data=("ticket", "staff"), sample=_reminder_sample,
                 fields=(*_STAFF_TICKET, *_person("staff")),
                 used_by="tickets reminders (to the handler)"),
    TemplateKind(OVERDUE, data=("ticket", "staff", "supervisor"), sample=_overdue_sample,
                 fields=(*_STAFF_TICKET, *_person("staff"), *_person("supervisor")),
                 used_by="tickets overdue alerts (to the supervisor)"),
    TemplateKind(DIGEST, data=("staff", "tickets"), sample=_digest_sample,
                 fields=(*_person("staff"), "tickets", *(f"tickets[].{f}" for f in _TICKET_FOR_STAFF)),
                 used_by="tickets morning digest (to each staff member)"),
    TemplateKind(RESOLVED, data=("ticket",), sample=_resolved_sample,
                 fields=("ticket", *(f"ticket.{f}" for f in (
                     "id", "category", "reporter", "handler", "created_at", "resolved_at", "result"))),
                 used_by="tickets resolve (to the resident's group)"),
))
