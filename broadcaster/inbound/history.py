"""The office's inbound figures over a window, read from the resident-message journal.

``figures(app, start, end)`` -> ``{"messages", "answered", "missed", "top_misses"}``:
messages received (joins not counted), those the bot answered, addressed
questions nothing answered, and the misses grouped as ``faq misses`` shows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from broadcaster.inbound import journal

if TYPE_CHECKING:
    from broadcaster.app import App


def figures(app: App, start: datetime, end: datetime) -> dict:
    messages = answered = missed = 0
    for rec in journal.read(app.store, start, app.tz):
        kind = rec.get("type")
        at = rec.get("received_at") if kind == "message" else rec.get("at")
        if not at or not start <= datetime.fromisoformat(at) <= end:
            continue
        if kind == "message":
            messages += 1
        elif kind == "outcome" and rec.get("reply"):
            answered += 1
        elif kind == "outcome" and rec.get("missed"):
            missed += 1
    top: list[dict] = []
    if missed:
        from broadcaster.faq.misses import misses  # start-up time: loaded when first used

        top = [m for m in misses(app, start) if not m["last_at"] or m["last_at"] <= end.isoformat()]
    return {"messages": messages, "answered": answered, "missed": missed, "top_misses": top}
