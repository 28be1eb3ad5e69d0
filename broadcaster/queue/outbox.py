"""The durable queue: one announcement, one delivery row per targeted group.

An announcement is accepted once it is in the store (``enqueue`` returns only
then). Its deliveries move ``pending -> sent | failed | expired | cancelled``;
the announcement moves ``queued -> sending -> done`` (or ``cancelled``), and a
finished one leaves the queue for the archive, where the delivery log reads it.
The rows are the typed records of ``broadcaster.store.records``.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any

from broadcaster.delivery.markdown import title_of
from broadcaster.errors import InputError
from broadcaster.store.records import (
    ANNOUNCEMENT_STATES,
    CANCELLED,
    DELIVERY_STATES,
    DONE,
    EXPIRED,
    FAILED,
    PENDING,
    QUEUED,
    SENDING,
    SENT,
    Announcement,
    AnnouncementMeta,
    Delivery,
)

if TYPE_CHECKING:
    from broadcaster.app import App

__all__ = ["ANNOUNCEMENT_STATES", "CANCELLED", "DELIVERY_STATES", "DONE", "EXPIRED", "FAILED",
           "PENDING", "QUEUED", "SENDING", "SENT", "Announcement", "Delivery", "Message"]

DEFAULT_EXPIRY = timedelta(hours=24)


@dataclass(frozen=True)
class Message:
    """What one group is to receive: Markdown, already rendered for that group."""

    group_id: str
    markdown: str


def new_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def enqueue(app: App, messages: list[Message], *, source: str, **options: Any) -> str | None:
    """Queue one announcement durably; return its id (None for no messages).
    ``options`` as ``queue_announcement``'s."""
    queued = queue_announcement(app, messages, source=source, **options)
    return queued.meta.id if queued is not None else None


def queue_announcement(
    app: App,
    messages: list[Message],
    *,
    source: str,
    urgent: bool = False,
    mention_all: bool = False,
    scheduled_for: datetime | None = None,
    expires: timedelta = DEFAULT_EXPIRY,
    created_by: str | None = None,
    ann_id: str | None = None,
    reply: bool = False,
    extra: dict[str, Any] | None = None,
) -> Announcement | None:
    """Queue one announcement durably; return it as queued (None for no messages), so that
    the caller need not read it back.

    ``ann_id`` (a deterministic id, see ``stable_id``) makes queuing idempotent:
    when an announcement with that id and the same ``source`` exists, active or
    archived, nothing is queued again and that one is returned.
    ``reply``: an answer to residents (see broadcaster.inbound.replies); ``extra``: a
    feature's own fields for the announcement (kept as given, e.g. ``reply_routes``).
    """
    if not messages:
        return None
    seen: set[str] = set()
    for m in messages:
        if m.group_id in seen:
            raise InputError(f"group {m.group_id!r} targeted twice in one announcement")
        seen.add(m.group_id)
    now = app.now()
    when = scheduled_for or now
    bodies: dict[str, str] = {}
    rows = []
    for m in messages:
        key = _digest(m.markdown)
        bodies[key] = m.markdown
        rows.append(Delivery(group=m.group_id, body=key, next_attempt_at=when))
    meta = AnnouncementMeta(
        id=ann_id or new_id(now), created_at=now, scheduled_for=when, expires_at=when + expires,
        status=QUEUED, source=source, title=title_of(messages[0].markdown), bodies=bodies,
        urgent=urgent, mention_all=mention_all,
        created_by=created_by or os.environ.get("USER"), updated_at=now,
        reply=reply, extra=dict(extra or {}),
    )
    store = app.store
    with store.transaction():
        if ann_id is not None:
            found = store.announcement(ann_id)
            if found is not None and found.meta.source == source:
                return found
        ann = Announcement(meta, rows)
        ann.meta.id = store.add_announcement(ann)  # a taken id gets a fresh one
        return ann


def stable_id(key: str, when: datetime) -> str:
    """A deterministic announcement id for ``key`` (e.g. one ticket's acknowledgement)."""
    return f"{when:%Y%m%d-%H%M%S}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:6]}"


# -- reading -------------------------------------------------------------------

def get(app: App, ann_id: str) -> Announcement:
    ann = app.store.announcement(ann_id)
    if ann is None:
        damaged = [d for d in app.store.damaged() if d.name == f"announcement {ann_id}"]
        if damaged:
            raise InputError(f"announcement {ann_id} is damaged and was set aside as "
                             f"{damaged[-1].path} ({damaged[-1].reason})")
        raise InputError(f"no announcement with id {ann_id!r} (see: queue list --all)")
    return ann


def active(app: App) -> list[Announcement]:
    return app.store.active()


def archived(app: App, since: datetime | None = None) -> list[Announcement]:
    return app.store.archived(since)


def newest(app: App, *, finished: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
    """Announcement summaries, newest first: the queue's, and with ``finished`` the
    archive's too, read from the history index a day at a time until ``limit``."""
    def created(s: dict) -> datetime:
        return datetime.fromisoformat(s["created_at"])

    live = sorted((a.summary() for a in active(app)), key=created, reverse=True)
    if not finished:
        return live[:limit]
    done = ({k: v for k, v in s.items() if k not in INDEX_ONLY} for s in app.store.history.summaries())
    return list(islice(heapq.merge(live, done, key=created, reverse=True), limit))


INDEX_ONLY = ("last_update", "log_days")


# -- changing ------------------------------------------------------------------

def _change(app: App, ann_id: str, fn) -> Announcement:
    try:
        return app.store.change(ann_id, fn)
    except KeyError:
        get(app, ann_id)     # the precise message: unknown or damaged
        raise


def cancel(app: App, ann_id: str) -> int:
    """Cancel every delivery not sent yet; return how many were cancelled."""
    now = app.now()
    result = {"n": 0}

    def change(ann: Announcement) -> list[Delivery]:
        if ann.finished:
            raise InputError(f"announcement {ann_id} is already {ann.status}")
        changed = [d for d in ann.deliveries if d.status == PENDING]
        for d in changed:
            d.status, d.updated_at, d.next_attempt_at = CANCELLED, now, None
        ann.meta.status = CANCELLED
        ann.meta.cancelled_at = ann.meta.updated_at = now
        result["n"] = len(changed)
        return changed

    _change(app, ann_id, change)
    return result["n"]


def retry(app: App, ann_id: str, expires: timedelta = DEFAULT_EXPIRY) -> int:
    """Put failed deliveries back to pending (with a fresh expiry); return how many."""
    now = app.now()
    result = {"n": 0}

    def change(ann: Announcement) -> list[Delivery]:
        if ann.status == CANCELLED:
            raise InputError(f"announcement {ann_id} was cancelled; queue it again instead")
        changed = [d for d in ann.deliveries if d.status == FAILED]
        for d in changed:
            d.status, d.next_attempt_at, d.updated_at = PENDING, now, now
        if changed:
            if ann.meta.expires_at <= now:
                ann.meta.expires_at = now + expires
            ann.meta.status = SENDING
            ann.meta.updated_at = now
        result["n"] = len(changed)
        return changed

    _change(app, ann_id, change)
    return result["n"]
