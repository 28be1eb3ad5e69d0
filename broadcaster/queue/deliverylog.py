"""The delivery log: what happened to every delivery, read from the queue and the archive."""

from __future__ import annotations

from datetime import datetime

from broadcaster.errors import InputError
from broadcaster.queue import outbox
from broadcaster.queue.outbox import DELIVERY_STATES, Announcement

DEFAULT_SINCE_DAYS = 7


def delivery_view(d: dict) -> dict:
    return {
        "group": d["group"],
        "status": d["status"],
        "attempts": d.get("attempts", 0),
        "last_error": d.get("last_error"),
        "sent_at": d.get("sent_at"),
        "updated_at": d.get("updated_at"),
        "next_attempt_at": d.get("next_attempt_at"),
        "http_status": d.get("http_status"),
        "code": d.get("code"),
        "latency_ms": d.get("latency_ms"),
        "parts_sent": d.get("parts_sent", 0),
    }


def show(ann: Announcement) -> dict:
    """``queue show`` / ``report``: totals and every delivery."""
    out = ann.summary()
    out["deliveries"] = [delivery_view(d) for d in ann.deliveries]
    return out


def report(app, ann_id: str) -> dict:
    ann = outbox.get(app, ann_id)
    out = show(ann)
    out["not_delivered"] = [
        {"group": d["group"], "status": d["status"], "reason": reason(d["status"], d.get("last_error"))}
        for d in ann.deliveries if d["status"] != outbox.SENT
    ]
    return out


def reason(status: str, last_error: str | None) -> str:
    """Why a delivery did not arrive: its state first, the last platform error as detail.

    A cancelled delivery is "announcement cancelled" even if an earlier attempt failed.
    """
    if status == outbox.FAILED:
        return last_error or _why(status)
    if last_error:
        return f"{_why(status)} (last attempt: {last_error})"
    return _why(status)


def _why(status: str) -> str:
    return {
        outbox.PENDING: "not sent yet",
        outbox.CANCELLED: "announcement cancelled",
        outbox.EXPIRED: "expired before delivery",
        outbox.FAILED: "failed",
    }.get(status, status)


def query(
    app,
    *,
    announcement: str | None = None,
    group: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Log rows, newest first."""
    if status is not None and status not in DELIVERY_STATES:
        raise InputError(f"--status {status!r}: one of {', '.join(DELIVERY_STATES)}")
    if announcement is not None:
        anns = [outbox.get(app, announcement)]
    else:
        anns = outbox.active(app) + outbox.archived(app, since)
    rows = []
    for ann in anns:
        for d in ann.deliveries:
            if group is not None and d["group"] != group:
                continue
            if status is not None and d["status"] != status:
                continue
            updated = d.get("updated_at") or ann.meta["created_at"]
            if since is not None and datetime.fromisoformat(updated) < since:
                continue
            rows.append({
                "announcement": ann.id,
                "group": d["group"],
                "status": d["status"],
                "attempts": d.get("attempts", 0),
                "last_error": d.get("last_error"),
                "updated_at": updated,
                "sent_at": d.get("sent_at"),
                "http_status": d.get("http_status"),
                "code": d.get("code"),
                "latency_ms": d.get("latency_ms"),
            })
    rows.sort(key=lambda r: r["updated_at"], reverse=True)
    return rows[:limit] if limit else rows
