"""Per-robot rate limits, kept by the sender so that platforms never refuse us.

A sliding window per key (``count`` sends per ``per_seconds``), on wall-clock
time so that it can be persisted between passes: a ``run-once`` every minute
must not send 20 messages at 07:00:59 and 20 more at 07:01:01 to one robot. A
platform's own rate-limit answer blocks the key until the wait it asked for.

A window is kept a little longer than the platform's (``margin``): the
platform counts a request when it arrives, the limiter when it leaves, and
latency varies, so a send booked exactly one window after the send it
replaces can reach the platform while that one still counts (a 26 KB notice
to Discord, 14 parts at 5 per 2 s, got two 429s at the window boundary). For
the same reason a send that leaves late (its thread held up on a busy machine)
counts from when it left (``left_at``), not from its slot.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from broadcaster.channels.base import RateLimit

STATE_NAME = "ratelimit"
LATE = 0.01     # seconds a send may leave after its slot and still count from the slot


def check_state(doc: dict) -> None:
    """The persisted limiter (``dump()``): ``{"keys": {key: {window, sends, blocked_until}}}``;
    ``BadRecord`` otherwise (the store then sets it aside and starts afresh)."""
    from broadcaster.store.records import check_shape  # start-up time: loaded when first used

    keys = check_shape(doc, "ratelimit", {"keys": dict}).get("keys", {})
    for key, entry in keys.items():
        check_shape(entry, f"keys.{key}", {"window": (int, float), "sends": "numbers",
                                          "blocked_until": (int, float)})


def margin(limit: RateLimit) -> float:
    """Seconds added to ``limit``'s window: 5 % of it, at least 50 ms, at most 1 s."""
    return min(1.0, max(0.05, 0.05 * limit.per_seconds))


class RateLimiter:
    def __init__(self, clock=time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._sends: dict[str, deque[float]] = {}
        self._windows: dict[str, float] = {}
        self._blocked: dict[str, float] = {}

    def _earliest(self, key: str, limit: RateLimit, now: float) -> float:
        """The earliest time ``key`` allows one more send (bookings may lie in the future)."""
        q = self._sends.setdefault(key, deque())
        while q and q[0] <= now - limit.per_seconds - margin(limit):
            q.popleft()
        t = max(now, self._blocked.get(key, 0.0))
        if len(q) >= limit.count:
            # conservative: after the count-th latest booking has left the window
            t = max(t, q[len(q) - limit.count] + limit.per_seconds + margin(limit))
        return t

    def reserve(self, limits: list[tuple[str, RateLimit]], max_wait: float) -> tuple[bool, float]:
        """Book the earliest slot all ``limits`` allow.

        Returns ``(True, t)`` when the slot is within ``max_wait`` seconds (the
        caller sleeps until ``t`` and sends), else ``(False, t)`` and nothing is booked.
        """
        now = self._clock()
        with self._lock:
            t = max([now] + [self._earliest(k, lim, now) for k, lim in limits])
            if t - now > max_wait:
                return False, t
            for key, lim in limits:
                q = self._sends[key]
                q.append(t)
                if len(q) > 1 and q[-2] > t:  # keep bookings sorted
                    self._sends[key] = deque(sorted(q))
                self._windows[key] = lim.per_seconds
            return True, t

    def left_at(self, limits: list[tuple[str, RateLimit]], slot: float, at: float) -> None:
        """The send booked for ``slot`` left at ``at``: when later (its thread was held up
        more than ``LATE``), it counts from ``at``, so the sends after it keep their
        distance from what the platform sees."""
        if at - slot <= LATE:
            return
        with self._lock:
            for key, _lim in limits:
                q = self._sends.get(key)
                if q is None or slot not in q:
                    continue
                q.remove(slot)
                q.append(at)
                if len(q) > 1 and q[-2] > at:  # keep bookings sorted
                    self._sends[key] = deque(sorted(q))

    def block(self, keys: list[str], until: float) -> None:
        """The platform said "too fast": send nothing on these keys before ``until``."""
        with self._lock:
            for key in keys:
                self._blocked[key] = max(self._blocked.get(key, 0.0), until)

    # -- persistence -----------------------------------------------------------
    def load(self, data: dict) -> None:
        now = self._clock()
        with self._lock:
            for key, entry in data.get("keys", {}).items():
                window = float(entry.get("window", 60))
                self._windows[key] = window
                self._sends[key] = deque(t for t in entry.get("sends", []) if t > now - window)
                if entry.get("blocked_until", 0) > now:
                    self._blocked[key] = float(entry["blocked_until"])

    def dump(self) -> dict:
        now = self._clock()
        out = {}
        with self._lock:
            for key, q in self._sends.items():
                window = self._windows.get(key, 60.0)
                recent = [round(t, 3) for t in q if t > now - window]
                blocked = self._blocked.get(key, 0.0)
                if recent or blocked > now:
                    out[key] = {"window": window, "sends": recent, "blocked_until": blocked}
            for key, until in self._blocked.items():
                if key not in out and until > now:
                    out[key] = {"window": self._windows.get(key, 60.0), "sends": [],
                                "blocked_until": until}
        return {"keys": out}


def merge_state(stored: dict, mine: dict, now: float) -> dict:
    """``mine`` (a ``dump()``) merged into the persisted state another process may have written.

    Sends of both are kept (within their window), blocks to the later end:
    ``serve`` and a ``run-once`` share each robot's limit.
    """
    keys: dict = {}
    for source in (stored.get("keys", {}), mine.get("keys", {})):
        for key, entry in source.items():
            window = float(entry.get("window", 60))
            into = keys.setdefault(key, {"window": window, "sends": set(), "blocked_until": 0.0})
            into["window"] = max(into["window"], window)
            into["sends"].update(t for t in entry.get("sends", []) if t > now - window)
            into["blocked_until"] = max(into["blocked_until"], float(entry.get("blocked_until", 0)))
    out = {}
    for key, entry in keys.items():
        if entry["sends"] or entry["blocked_until"] > now:
            out[key] = {**entry, "sends": sorted(entry["sends"])}
    return {"keys": out}
