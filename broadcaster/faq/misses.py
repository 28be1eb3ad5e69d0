"""Misses: questions addressed to the bot that nothing answered, grouped for staff.

They are read from the resident-message journal (``broadcaster.inbound.journal``,
records of type ``miss``). Similar questions are one row: texts whose
normalised forms are close (rapidfuzz) join the row of the most-asked one.
Rows are most-asked first, with the groups that asked and the last time.
"""

from __future__ import annotations

from datetime import datetime

from broadcaster.inbound import journal

SIMILAR = 75     # rapidfuzz ratio (0-100) at which two questions are one row


def misses(app, since: datetime) -> list[dict]:
    from rapidfuzz import fuzz  # start-up time: loaded when first used

    from broadcaster.faq.text import compact  # start-up time: loaded when first used

    counts: dict[str, dict] = {}
    for rec in journal.read(app.store, since, app.tz):
        if rec.get("type") != "miss" or not isinstance(rec.get("text"), str):
            continue
        at = rec.get("at") or ""
        if at and datetime.fromisoformat(at) < since:
            continue
        key = compact(rec["text"]) or rec["text"]
        row = counts.setdefault(key, {"text": rec["text"], "count": 0, "groups": set(), "last_at": at})
        row["count"] += 1
        if rec.get("group"):
            row["groups"].add(rec["group"])
        if at > row["last_at"]:
            row["last_at"], row["text"] = at, rec["text"]
    rows: list[tuple[str, dict]] = sorted(counts.items(), key=lambda kv: -kv[1]["count"])
    merged: list[tuple[str, dict]] = []
    for key, row in rows:
        home = next((m for k, m in merged if fuzz.ratio(k, key) >= SIMILAR), None)
        if home is None:
            merged.append((key, row))
            continue
        home["count"] += row["count"]
        home["groups"] |= row["groups"]
        home["last_at"] = max(home["last_at"], row["last_at"])
    out = [{"text": r["text"], "count": r["count"], "groups": sorted(r["groups"]),
            "last_at": r["last_at"] or None} for _, r in merged]
    out.sort(key=lambda r: r["last_at"] or "", reverse=True)
    out.sort(key=lambda r: r["count"], reverse=True)   # stable: most asked, then latest
    return out
