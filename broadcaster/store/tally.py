"""A tally: the delivery figures of some announcements, small enough to keep per day.

A ``Tally`` holds, for the announcements added to it:

- ``announcements``: per announcement, its summary as ``queue list`` shows it (times,
  status, source, title, totals) and when its last delivery changed (``last_update``):
  the per-announcement totals;
- ``groups``: per group, how many of its deliveries were sent, failed, expired,
  pending or cancelled (counted per group and announcement, never per part);
- ``failures``: per group, per reason, how many deliveries failed;
- ``latency_s``: when sent deliveries arrived after their scheduled time, and
  ``request_ms``: how long the platform took to answer, both as histograms of
  values rounded to two significant digits (quantiles are then within 5 %);
- ``published`` and ``sources``: announcements counted without their summaries,
  in a ``compact()`` tally (a month of days summed up: see ``history``), which
  ``published()`` and ``by_source()`` add to those of ``announcements``.

Its size depends on the number of groups and announcements, never on how many
rows or parts there were, so a day of history tallies into a few hundred kB and
180 of them merge in well under a second. ``as_json``/``from_json`` give the
form it is stored in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

COUNTED = ("sent", "failed", "expired", "pending", "cancelled")
SENT, FAILED, EXPIRED, PENDING, CANCELLED = range(5)
REASON_LIMIT = 80


def bucket(value: float) -> str:
    """``value`` rounded to two significant digits, as a histogram key (``"1200"``)."""
    if value < 100:
        return str(max(0, round(value)))
    digits = int(math.log10(value)) - 1
    return str(round(value / 10**digits) * 10**digits)


def quantile(hist: dict[str, int], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of a histogram (None when it is empty)."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for key in sorted(hist, key=float):
        seen += hist[key]
        if seen >= rank:
            return float(key)
    return float(max(hist, key=float))  # not reached: ranks never exceed the total


def reason_of(last_error: str | None) -> str:
    """A failure's reason as it is counted: the first line of the platform's words, short."""
    text = (last_error or "").strip().splitlines()
    reason = text[0].strip() if text else ""
    if len(reason) > REASON_LIMIT:
        reason = reason[: REASON_LIMIT - 1] + "…"
    return reason or "unknown"


def source_kind(source: str | None) -> str:
    """``job:morning-weather@…`` -> ``job``; ``cli`` -> ``cli``."""
    return (source or "unknown").split(":", 1)[0].split("@", 1)[0] or "unknown"


def _add_hist(into: dict[str, int], key: str, n: int = 1) -> None:
    into[key] = into.get(key, 0) + n


@dataclass
class Tally:
    announcements: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, list[int]] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    latency_s: dict[str, int] = field(default_factory=dict)
    request_ms: dict[str, int] = field(default_factory=dict)
    published_n: int = 0
    sources: dict[str, int] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------
    def add(self, meta: dict[str, Any], deliveries: list[dict[str, Any]]) -> None:
        """Count one announcement (its meta document and delivery rows), once."""
        if meta["id"] in self.announcements:
            return
        totals = [0] * len(COUNTED)
        scheduled = datetime.fromisoformat(meta["scheduled_for"])
        last = datetime.fromisoformat(meta["created_at"])
        for d in deliveries:
            if d.get("updated_at"):
                last = max(last, datetime.fromisoformat(d["updated_at"]))
            status = d["status"]
            i = COUNTED.index(status)
            totals[i] += 1
            row = self.groups.get(d["group"])
            if row is None:
                row = self.groups[d["group"]] = [0] * len(COUNTED)
            row[i] += 1
            if i == SENT:
                if d.get("sent_at"):
                    wait = (datetime.fromisoformat(d["sent_at"]) - scheduled).total_seconds()
                    _add_hist(self.latency_s, bucket(max(0.0, wait)))
                if d.get("latency_ms") is not None:
                    _add_hist(self.request_ms, bucket(float(d["latency_ms"])))
            elif i == FAILED:
                per = self.failures.setdefault(d["group"], {})
                _add_hist(per, reason_of(d.get("last_error")))
        self.announcements[meta["id"]] = {
            "id": meta["id"],
            "created_at": meta["created_at"],
            "scheduled_for": meta["scheduled_for"],
            "expires_at": meta.get("expires_at"),
            "status": meta["status"],
            "source": meta.get("source") or None,
            "title": meta.get("title") or None,
            "urgent": bool(meta.get("urgent")),
            "targets": len(deliveries),
            **dict(zip(COUNTED, totals, strict=True)),
            "last_update": last.isoformat(timespec="seconds"),
        }

    def merge(self, other: Tally) -> dict[str, int]:
        """Add ``other`` in and return its ``totals()`` (counted on the way); its counters
        may be taken over (use ``other`` no more)."""
        for ann_id, totals in other.announcements.items():
            self.announcements.setdefault(ann_id, totals)
        groups = self.groups
        sent = failed = expired = pending = cancelled = 0
        for gid, c in other.groups.items():
            sent += c[0]
            failed += c[1]
            expired += c[2]
            pending += c[3]
            cancelled += c[4]
            row = groups.get(gid)
            if row is None:
                groups[gid] = c
            else:
                row[0] += c[0]
                row[1] += c[1]
                row[2] += c[2]
                row[3] += c[3]
                row[4] += c[4]
        for gid, reasons in other.failures.items():
            per = self.failures.get(gid)
            if per is None:
                self.failures[gid] = reasons
                continue
            for reason, n in reasons.items():
                _add_hist(per, reason, n)
        for key, n in other.latency_s.items():
            _add_hist(self.latency_s, key, n)
        for key, n in other.request_ms.items():
            _add_hist(self.request_ms, key, n)
        self.published_n += other.published_n
        for key, n in other.sources.items():
            _add_hist(self.sources, key, n)
        return dict(zip(COUNTED, (sent, failed, expired, pending, cancelled), strict=True))

    # -- reading -------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        out = [0] * len(COUNTED)
        for counts in self.groups.values():
            for i, n in enumerate(counts):
                out[i] += n
        return dict(zip(COUNTED, out, strict=True))

    def published(self) -> int:
        """Announcements that count as published: all but those cancelled with nothing sent."""
        return self.published_n + sum(1 for a in self.announcements.values()
                                      if not (a["status"] == "cancelled" and not a["sent"]))

    def by_source(self) -> dict[str, int]:
        """Announcements per kind of source (``job``, ``cli``, ``ticket``…), most first."""
        out = dict(self.sources)
        for ann in self.announcements.values():
            _add_hist(out, source_kind(ann.get("source")))
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def compact(self) -> Tally:
        """This tally with its announcements counted instead of kept (``published``,
        ``sources``): what a sum over many days needs, a fraction of the size."""
        return Tally(groups=self.groups, failures=self.failures, latency_s=self.latency_s,
                     request_ms=self.request_ms, published_n=self.published(),
                     sources=self.by_source())

    # -- storage -------------------------------------------------------------------
    def as_json(self) -> dict[str, Any]:
        out = {"announcements": self.announcements, "groups": self.groups,
               "failures": self.failures, "latency_s": self.latency_s,
               "request_ms": self.request_ms}
        if self.published_n or self.sources:
            out.update(published=self.published_n, sources=self.sources)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        """The tally of ``data`` (freshly decoded JSON, which it takes over)."""
        return cls(announcements=data.get("announcements", {}), groups=data.get("groups", {}),
                   failures=data.get("failures", {}), latency_s=data.get("latency_s", {}),
                   request_ms=data.get("request_ms", {}), published_n=data.get("published", 0),
                   sources=data.get("sources", {}))
