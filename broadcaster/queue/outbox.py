"""The durable queue: one announcement file, one delivery row per targeted group.

An announcement is accepted once its file is on disk (``enqueue`` returns only
then). Its deliveries move ``pending -> sent | failed | expired | cancelled``;
the announcement moves ``queued -> sending -> done`` (or ``cancelled``), and a
finished one leaves the queue for the archive, where the delivery log reads it.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from tinydb.table import Document

from broadcaster.delivery.markdown import title_of
from broadcaster.errors import InputError
from broadcaster.timeparse import from_iso, iso

PENDING, SENT, FAILED, CANCELLED, EXPIRED = "pending", "sent", "failed", "cancelled", "expired"
DELIVERY_STATES = (PENDING, SENT, FAILED, CANCELLED, EXPIRED)
QUEUED, SENDING, DONE = "queued", "sending", "done"
ANNOUNCEMENT_STATES = (QUEUED, SENDING, DONE, CANCELLED)
DEFAULT_EXPIRY = timedelta(hours=24)
META_ID = 1


@dataclass(frozen=True)
class Message:
    """What one group is to receive: Markdown, already rendered for that group."""

    group_id: str
    markdown: str


@dataclass
class Announcement:
    meta: dict[str, Any]
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    _by_group: dict[str, dict] | None = field(default=None, repr=False, compare=False)

    def delivery(self, group_id: str) -> dict | None:
        if self._by_group is None:
            self._by_group = {d["group"]: d for d in self.deliveries}
        return self._by_group.get(group_id)

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def status(self) -> str:
        return self.meta["status"]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(DELIVERY_STATES, 0)
        for d in self.deliveries:
            out[d["status"]] += 1
        return out

    def body(self, delivery: dict) -> str:
        return self.meta["bodies"][delivery["body"]]

    def summary(self) -> dict[str, Any]:
        c = self.counts()
        return {
            "id": self.id,
            "created_at": self.meta["created_at"],
            "scheduled_for": self.meta["scheduled_for"],
            "expires_at": self.meta["expires_at"],
            "status": self.status,
            "source": self.meta.get("source"),
            "title": self.meta.get("title"),
            "urgent": self.meta.get("urgent", False),
            "targets": len(self.deliveries),
            "sent": c[SENT],
            "failed": c[FAILED],
            "pending": c[PENDING],
            "cancelled": c[CANCELLED],
            "expired": c[EXPIRED],
        }


def new_id(now: datetime) -> str:
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def new_delivery(group_id: str, body: str, due: str) -> dict[str, Any]:
    return {
        "group": group_id,
        "body": body,
        "status": PENDING,
        "attempts": 0,
        "parts_sent": 0,
        "next_attempt_at": due,
        "updated_at": None,
        "sent_at": None,
        "last_error": None,
        "http_status": None,
        "code": None,
        "latency_ms": None,
        "history": [],
    }


def enqueue(
    app,
    messages: list[Message],
    *,
    source: str,
    urgent: bool = False,
    mention_all: bool = False,
    scheduled_for: datetime | None = None,
    expires: timedelta = DEFAULT_EXPIRY,
    created_by: str | None = None,
    ann_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str | None:
    """Queue one announcement durably; return its id (None for no messages).

    ``ann_id`` (a deterministic id, see ``stable_id``) makes queuing idempotent:
    when an announcement with that id and the same ``source`` exists, active or
    archived, nothing is queued again and its id is returned.
    ``extra``: more fields for the announcement's meta (a reply's ``reply`` and ``reply_route``).
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
        rows.append(new_delivery(m.group_id, key, iso(when)))
    first = messages[0].markdown
    meta = {
        "id": new_id(now),
        "created_at": iso(now),
        "scheduled_for": iso(when),
        "expires_at": iso(when + expires),
        "status": QUEUED,
        "source": source,
        "created_by": created_by or os.environ.get("USER"),
        "urgent": urgent,
        "mention_all": mention_all,
        "title": title_of(first),
        "bodies": bodies,
        "updated_at": iso(now),
        **(extra or {}),
    }
    store = app.store
    with store.lock():
        if ann_id is not None:
            found = store.find(ann_id)
            if found is not None and read(app, found).meta.get("source") == source:
                return ann_id
            meta["id"] = ann_id if found is None else new_id(now)  # a digest collision: a fresh id
        path = store.active_path(meta["id"])
        while path.exists():  # a same-second id collision is astronomically unlikely; still, never overwrite
            meta["id"] = new_id(now)
            path = store.active_path(meta["id"])
        with store.transaction(path) as db:
            db.table("_default").insert(Document(meta, doc_id=META_ID))
            db.table("deliveries").insert_multiple(rows)
    return meta["id"]


def stable_id(key: str, when: datetime) -> str:
    """A deterministic announcement id for ``key`` (e.g. one ticket's acknowledgement)."""
    return f"{when:%Y%m%d-%H%M%S}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:6]}"


# -- reading -------------------------------------------------------------------

def read(app, path: Path) -> Announcement:
    with app.store.read_only(path) as db:
        return _from_db(db)


def _from_db(db) -> Announcement:
    meta = db.table("_default").get(doc_id=META_ID)
    rows = db.table("deliveries").all()
    deliveries = []
    for r in rows:
        d = dict(r)
        d["_doc"] = r.doc_id
        deliveries.append(d)
    return Announcement(dict(meta), deliveries)


def get(app, ann_id: str) -> Announcement:
    path = app.store.find(ann_id)
    if path is None:
        raise InputError(f"no announcement with id {ann_id!r} (see: queue list --all)")
    return read(app, path)


def active(app, ids: set[str] | None = None) -> list[Announcement]:
    """Announcements in the queue (only those of ``ids`` when given)."""
    out = []
    for ann_id in app.store.active_ids() if ids is None else sorted(ids):
        path = app.store.active_path(ann_id)
        try:
            out.append(read(app, path))
        except FileNotFoundError:  # archived meanwhile by another process
            continue
    return out


def archived(app, since: datetime | None = None) -> list[Announcement]:
    months = None
    if since is not None:
        months = []
        cur = since.replace(day=1)
        end = app.now()
        while (cur.year, cur.month) <= (end.year, end.month):
            months.append(f"{cur:%Y-%m}")
            cur = (cur + timedelta(days=32)).replace(day=1)
    out = []
    for ann_id in app.store.archived_ids(months):
        path = app.store.archive_path(ann_id)
        try:
            out.append(read(app, path))
        except FileNotFoundError:
            continue
    return out


def newest(app, *, finished: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
    """Announcement summaries, newest first: the queue's, and with ``finished`` the
    archive's too, read from the history index a day at a time until ``limit``."""
    def created(s: dict) -> datetime:
        return from_iso(s["created_at"])

    live = sorted((a.summary() for a in active(app)), key=created, reverse=True)
    if not finished:
        return live[:limit]
    done = ({k: v for k, v in s.items() if k not in INDEX_ONLY} for s in app.store.history.summaries())
    return list(islice(heapq.merge(live, done, key=created, reverse=True), limit))


INDEX_ONLY = ("last_update", "log_days")


# -- changing ------------------------------------------------------------------

@dataclass
class _Loaded:
    signature: tuple
    data: dict
    ann: Announcement


def modify(app, ann_id: str, change, *, cache: dict[str, _Loaded] | None = None) -> Announcement:
    """Apply ``change(announcement, db)`` under the store lock; archive/reactivate as needed.

    A caller that changes the same announcement again and again (dispatch, every
    half second) passes a ``cache``: while the file is still the one this process
    wrote last, it is not read and decoded again.
    """
    store = app.store
    with store.lock():
        path = store.find(ann_id)
        if path is None:
            raise InputError(f"no announcement with id {ann_id!r} (see: queue list --all)")
        hit = cache.pop(ann_id, None) if cache is not None else None
        with store.read_only(path) as db:
            if hit is not None and hit.signature == store.signature(path):
                db.storage.preload(hit.data)
                ann = hit.ann
            else:
                ann = _from_db(db)
            change(ann, db)
            db.storage.commit()
            data = db.storage.read()
        in_queue = path.parent == store.active_dir
        finished = ann.meta["status"] in (DONE, CANCELLED)
        if in_queue and finished:
            store.archive(ann_id)
            store.history.record(ann.meta, [_clean(d) for d in ann.deliveries])
        elif not in_queue and not finished:
            store.reactivate(ann_id)
            store.history.forget(ann_id)
        elif cache is not None:
            cache[ann_id] = _Loaded(store.signature(path), data, ann)
    return ann


def write_back(db, ann: Announcement, changed: list[dict]) -> None:
    """Persist ``ann.meta`` and the ``changed`` delivery rows.

    Rows are replaced by document id straight in the TinyDB file's tables (the
    Table API would rebuild the whole table once per row); the file is written
    once, when the transaction commits.
    """
    data = db.storage.read()
    data["_default"][str(META_ID)] = _clean(ann.meta)
    rows = data["deliveries"]
    for d in changed:
        rows[str(d["_doc"])] = _clean(d)
    db.storage.write(data)


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "_doc"}


def settle(ann: Announcement, now: datetime) -> None:
    """Recompute the announcement's status from its deliveries."""
    c = ann.counts()
    if ann.meta["status"] == CANCELLED:
        return
    if c[PENDING] == 0:
        ann.meta["status"] = DONE
        ann.meta.setdefault("finished_at", iso(now))
    elif any(d["attempts"] for d in ann.deliveries) or c[SENT] or c[FAILED]:
        ann.meta["status"] = SENDING
    ann.meta["updated_at"] = iso(now)


def cancel(app, ann_id: str) -> int:
    """Cancel every delivery not sent yet; return how many were cancelled."""
    now = app.now()
    result = {"n": 0}

    def change(ann: Announcement, db) -> None:
        if ann.meta["status"] in (DONE, CANCELLED):
            raise InputError(f"announcement {ann_id} is already {ann.meta['status']}")
        changed = []
        for d in ann.deliveries:
            if d["status"] == PENDING:
                d.update(status=CANCELLED, updated_at=iso(now), next_attempt_at=None)
                changed.append(d)
        ann.meta["status"] = CANCELLED
        ann.meta["cancelled_at"] = iso(now)
        ann.meta["updated_at"] = iso(now)
        write_back(db, ann, changed)
        result["n"] = len(changed)

    modify(app, ann_id, change)
    return result["n"]


def retry(app, ann_id: str, expires: timedelta = DEFAULT_EXPIRY) -> int:
    """Put failed deliveries back to pending (with a fresh expiry); return how many."""
    now = app.now()
    result = {"n": 0}

    def change(ann: Announcement, db) -> None:
        if ann.meta["status"] == CANCELLED:
            raise InputError(f"announcement {ann_id} was cancelled; queue it again instead")
        changed = []
        for d in ann.deliveries:
            if d["status"] == FAILED:
                d.update(status=PENDING, next_attempt_at=iso(now), updated_at=iso(now))
                changed.append(d)
        if changed:
            if from_iso(ann.meta["expires_at"]) <= now:
                ann.meta["expires_at"] = iso(now + expires)
            ann.meta["status"] = SENDING
            ann.meta["updated_at"] = iso(now)
        write_back(db, ann, changed)
        result["n"] = len(changed)

    modify(app, ann_id, change)
    return result["n"]
