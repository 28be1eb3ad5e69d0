"""Rate limits shared by every dispatcher of a PostgreSQL store: one row per robot.

``reserve`` books a slot for all the keys of a send in one statement, the
function ``broadcaster_book`` (``pgschema``, version 3), which holds their
rows' locks (``SELECT … FOR UPDATE``, keys in a fixed order so two dispatchers
never deadlock) while it computes the sliding window of
``delivery.ratelimit.RateLimiter`` over the bookings of every machine, so two
dispatchers together still respect a robot's 20 a minute. One round trip a
send, committed by the server as it answers.
Only dispatchers sending to the same robot meet on its row. Times are epoch
seconds of the machines' clocks (kept in step by NTP, as the file store's
persisted bookings assume too).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from broadcaster.delivery.ratelimit import RateLimiter, margin

if TYPE_CHECKING:
    from broadcaster.channels.base import RateLimit
    from broadcaster.store.pgstore import PgStore


BOOK = ("SELECT ok, slot FROM broadcaster_book(%s::text[], %s::integer[], %s::float8[],"
        " %s::float8[], %s, %s)")


class PgRateLimiter(RateLimiter):
    """A ``RateLimiter`` whose bookings live in the table ``rate_limits``."""

    def __init__(self, store: PgStore, clock=time.time):
        super().__init__(clock)
        self.store = store

    def reserve(self, limits: list[tuple[str, RateLimit]], max_wait: float) -> tuple[bool, float]:
        if not limits:
            return True, self._clock()
        ok, slot = self.store.one(BOOK, (
            [k for k, _ in limits], [lim.count for _, lim in limits],
            [float(lim.per_seconds) for _, lim in limits], [margin(lim) for _, lim in limits],
            self._clock(), max_wait), "rate limits")
        return ok, slot

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
