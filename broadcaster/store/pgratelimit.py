"""Rate limits shared by every dispatcher of a PostgreSQL store: one row per robot.

``reserve`` books a slot for all the keys of a send with the function
``broadcaster_book`` (``pgschema``), which holds their rows' locks (``SELECT …
FOR UPDATE``, keys in a fixed order so two dispatchers never deadlock) while it
computes the sliding window of ``delivery.ratelimit.RateLimiter`` over the
bookings of every machine, so two dispatchers together still respect a robot's
20 a minute. The bookings of every worker waiting at the same moment go in one
statement (``broadcaster_book_many``, through ``pgbatch.Batch``), committed
by the server as it answers.
Only dispatchers sending to the same robot meet on its row. Times are epoch
seconds of the machines' clocks (kept in step by NTP, as the file store's
persisted bookings assume too).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from broadcaster.delivery.ratelimit import RateLimiter, margin
from broadcaster.store.pgbatch import Batch

if TYPE_CHECKING:
    from broadcaster.channels.base import RateLimit
    from broadcaster.store.pgstore import PgStore


BOOK_MANY = ("SELECT ok, slot FROM broadcaster_book_many(%s::integer[], %s::text[],"
             " %s::integer[], %s::float8[], %s::float8[], %s::float8[], %s::float8)")


class PgRateLimiter(RateLimiter):
    """A ``RateLimiter`` whose bookings live in the table ``rate_limits``."""

    def __init__(self, store: PgStore, clock=time.time):
        super().__init__(clock)
        self.store = store
        self._bookings = Batch(self._book)

    def reserve(self, limits: list[tuple[str, RateLimit]], max_wait: float) -> tuple[bool, float]:
        if not limits:
            return True, self._clock()
        return self._bookings.call((limits, max_wait))

    def _book(self, sends: list[tuple[list[tuple[str, RateLimit]], float]]
              ) -> list[tuple[bool, float]]:
        """The bookings of ``sends`` (each its limits and its ``max_wait``), in order, in one
        statement committed when it returns."""
        flat = [(n, key, lim) for n, (limits, _) in enumerate(sends, 1) for key, lim in limits]
        return self.store.all(BOOK_MANY, (
            [n for n, _, _ in flat], [k for _, k, _ in flat], [lim.count for _, _, lim in flat],
            [float(lim.per_seconds) for _, _, lim in flat], [margin(lim) for _, _, lim in flat],
            [float(wait) for _, wait in sends], self._clock()), "rate limits")

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
