"""Rate limits shared by every dispatcher of a PostgreSQL store: one row per robot.

``reserve`` books a slot for all the keys of a send in one transaction that
holds their rows' locks (``SELECT … FOR UPDATE``, keys in a fixed order so
two dispatchers never deadlock): the sliding window of
``delivery.ratelimit.RateLimiter`` computed over the bookings of every
machine, so two dispatchers together still respect a robot's 20 a minute.
Only dispatchers sending to the same robot meet on its row. Times are epoch
seconds of the machines' clocks (kept in step by NTP, as the file store's
persisted bookings assume too).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from broadcaster.delivery.ratelimit import RateLimiter

if TYPE_CHECKING:
    from broadcaster.channels.base import RateLimit
    from broadcaster.store.pgstore import PgStore


class PgRateLimiter(RateLimiter):
    """A ``RateLimiter`` whose bookings live in the table ``rate_limits``."""

    def __init__(self, store: PgStore, clock=time.time):
        super().__init__(clock)
        self.store = store

    def reserve(self, limits: list[tuple[str, RateLimit]], max_wait: float) -> tuple[bool, float]:
        if not limits:
            return True, self._clock()
        keys = sorted({k for k, _ in limits})

        select = ("SELECT key, window_s, sends, blocked_until FROM rate_limits"
                  " WHERE key = ANY(%s) ORDER BY key FOR UPDATE")

        def book(conn) -> tuple[bool, float]:
            rows = conn.execute(select, (keys,)).fetchall()
            if len(rows) < len(keys):       # a robot's first send: its row, then the locks
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO rate_limits (key, window_s, sends, blocked_until)"
                        " VALUES (%s, 60, '{}', 0) ON CONFLICT (key) DO NOTHING",
                        [(k,) for k in keys])
                rows = conn.execute(select, (keys,)).fetchall()
            here = RateLimiter(self._clock)
            here.load({"keys": {k: {"window": w, "sends": s, "blocked_until": b}
                                for k, w, s, b in rows}})
            ok, at = here.reserve(limits, max_wait)
            if ok:
                now = self._clock()
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE rate_limits SET window_s = %s, sends = %s WHERE key = %s",
                        [(lim.per_seconds, [t for t in here._sends[k] if t > now - lim.per_seconds], k)
                         for k, lim in limits])
            return ok, at

        return self.store.run(book, "rate limits")

    def block(self, keys: list[str], until: float) -> None:
        self.store.run(lambda conn: conn.cursor().executemany(
            "INSERT INTO rate_limits (key, window_s, sends, blocked_until) VALUES (%s, 60, '{}', %s)"
            " ON CONFLICT (key) DO UPDATE SET blocked_until ="
            " greatest(rate_limits.blocked_until, excluded.blocked_until)",
            [(k, until) for k in sorted(set(keys))]), "rate limits")

    def load(self, data: dict) -> None:
        """Nothing to load: the bookings are in the database."""

    def dump(self) -> dict:
        return {"keys": {}}
