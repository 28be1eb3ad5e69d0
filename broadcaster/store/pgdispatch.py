"""A dispatch session on PostgreSQL: claim due deliveries in batches, shared between machines.

Each session has a random token and, on a connection of its own, holds the
session-level advisory lock ``(namespace, token)`` for as long as it lives:
PostgreSQL releases it the moment the process dies (SIGKILL, a power cut: the
connection drops). A claim marks a batch of due deliveries with the token::

    UPDATE deliveries SET claimed_by = token
    WHERE (announcement, position) IN (SELECT … ORDER BY … LIMIT n
                                       FOR UPDATE SKIP LOCKED)

so two sessions never get the same row, and nobody waits for anybody.
``record`` is an ``UPDATE`` sent in autocommit (committed when it returns; the
per-send journal: the row itself) that carries the results of every worker
recording at that moment (``pgbatch``: group commit), applying
``records.merge`` in SQL: a row already sent stays sent,
a cancelled one stays cancelled unless this result says it was sent.
``close`` settles the announcements it touched (archiving finished ones) and
releases its claims.

A claim held by a session whose advisory lock is gone is taken over, but only
once it has been seen gone for ``GRACE`` seconds (``BROADCASTER_CLAIM_GRACE``,
default 30; by the database's clock, in the document ``claims-gone``): after a
database restart every session has lost its lock at once, and a heartbeat
thread takes it again within a second or two, so that its sends in flight are
recorded by it, not repeated by another. A SIGKILLed dispatcher therefore costs its claimed,
unsent rows ``GRACE`` seconds of delay and its sends in flight one repeat.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from broadcaster.store import pgschema
from broadcaster.store.base import Claim, DispatchSession
from broadcaster.store.pgbatch import Batch
from broadcaster.store.pgstore import _dumps, env_seconds
from broadcaster.store.records import AnnouncementMeta, BadRecord, Delivery

if TYPE_CHECKING:
    import psycopg

    from broadcaster.store.pgstore import PgStore

log = logging.getLogger("broadcaster.store")

BATCH = int(env_seconds("BROADCASTER_CLAIM_BATCH", 500))
GRACE = env_seconds("BROADCASTER_CLAIM_GRACE", 30)
HEARTBEAT = 1.0          # seconds between checks of the session's own lock
GONE_STATE = "claims-gone"

LIVE_SESSIONS = """
SELECT objid::bigint FROM pg_locks
WHERE locktype = 'advisory' AND classid = %s AND objsubid = 2 AND granted
"""

CLAIM = """
UPDATE deliveries d SET claimed_by = %(me)s
FROM (
    SELECT c.announcement, c.position
    FROM deliveries c JOIN announcements a ON a.id = c.announcement
    WHERE c.announcement = ANY(%(ids)s)
      AND c.status = 'pending'
      AND (c.claimed_by IS NULL OR c.claimed_by = ANY(%(gone)s))
      AND (a.expires_at <= %(now)s                 -- expired: settled by the dispatcher
           OR c.updated_at IS NULL                  -- untouched: due with its announcement
           OR c.updated_at > %(now)s                -- written while the clock was ahead
           OR coalesce(c.next_attempt_at, a.scheduled_for) <= %(now)s)
    ORDER BY c.announcement, c.position
    LIMIT %(limit)s
    FOR UPDATE OF c SKIP LOCKED
) picked
WHERE d.announcement = picked.announcement AND d.position = picked.position
RETURNING d.announcement, d.row
"""

# records.merge in SQL: sent is never taken back; cancelled stays unless this one was sent
RECORD = """
UPDATE deliveries d SET status = r.status, updated_at = r.updated_at,
       next_attempt_at = r.next, row = r.row::jsonb,
       claimed_by = CASE WHEN r.status = 'pending' THEN d.claimed_by END   -- done: released
FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[])
     AS r (ann, grp, status, updated_at, next, row)
WHERE d.announcement = r.ann AND d.grp = r.grp
  AND d.status <> 'sent' AND (d.status <> 'cancelled' OR r.status = 'sent')
"""

# announcements whose rows are all settled but whose status is not (a dispatcher died)
ORPHANS = """
SELECT a.id FROM announcements a
WHERE NOT a.finished
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.announcement = a.id AND d.status = 'pending')
"""


class PgDispatchSession(DispatchSession):
    def __init__(self, store: PgStore):
        self.store = store
        self.token = secrets.randbelow(2**31 - 2) + 1
        self._owner: psycopg.Connection | None = None
        self._owner_lock = threading.Lock()
        self._metas: dict[str, AnnouncementMeta] = {}
        self._accepted: set[str] = set()
        self._asked: set[str] = set()
        self._touched: set[str] = set()
        self._cancelled: set[str] = set()
        self._closed = False
        self._stopping = threading.Event()
        self._beat: threading.Thread | None = None
        self._records: Batch[tuple, None] = Batch(self._record)

    # -- being alive -------------------------------------------------------------------
    def _alive(self) -> None:
        """Hold this session's advisory lock (again, after a lost connection)."""
        import psycopg  # start-up time: loaded when first used

        with self._owner_lock:
            if self._owner is not None:
                try:
                    self._owner.execute("SELECT 1")
                    return
                except psycopg.Error:
                    self._drop_owner()
            conn = self.store.run(lambda _: self.store.connect(autocommit=True), "session lock")
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (pgschema.LOCK_NAMESPACE, self.token))
            self._owner = conn
            if self._beat is None:
                self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                              name=f"claims-{self.token}")
                self._beat.start()

    def _drop_owner(self) -> None:
        if self._owner is not None:
            with contextlib.suppress(Exception):    # a broken connection closes as it can
                self._owner.close()
            self._owner = None

    def _gone(self, conn: psycopg.Connection) -> list[int]:
        """Sessions holding claims that have been gone for ``GRACE`` seconds (their rows free).

        When a holder was first seen gone is kept in the document ``claims-gone``
        (database clock), so that every dispatcher, a fresh ``run-once`` too,
        counts the same grace.
        """
        live = {r[0] for r in conn.execute(LIVE_SESSIONS, (pgschema.LOCK_NAMESPACE,)).fetchall()}
        holders = {r[0] for r in conn.execute(
            "SELECT DISTINCT claimed_by FROM deliveries WHERE claimed_by IS NOT NULL"
            " AND status = 'pending'").fetchall()}
        absent = holders - live - {self.token}
        now = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
        with self.store.state(GONE_STATE) as seen:
            for token in list(seen):
                if int(token) not in absent:
                    del seen[token]
            for token in absent:
                seen.setdefault(str(token), now)
            return [int(t) for t, since in seen.items() if now - since >= GRACE]

    def _heartbeat(self) -> None:
        """Take the session's lock again soon after a lost connection (a database restart),
        so that its claims are not taken over while it still sends them."""
        while not self._stopping.wait(HEARTBEAT):
            try:
                self._alive()
            except Exception as exc:
                log.warning("dispatch session %s: %s", self.token, exc)

    # -- claiming ----------------------------------------------------------------------
    def claim(self, now: datetime, *, limit: int | None = None, only: set[str] | None = None,
              accept: Callable[[AnnouncementMeta], bool] | None = None) -> list[Claim]:
        # start-up time: loaded when first used
        from psycopg.types.json import Jsonb  # noqa: F401 - loads the JSON adapters

        self._alive()
        self._settle_orphans()

        def pick(conn):
            self._look(conn, now, only, accept)
            if not self._accepted:
                return []
            return conn.execute(CLAIM, {
                "me": self.token, "ids": sorted(self._accepted), "gone": self._gone(conn),
                "now": now, "limit": limit or BATCH}).fetchall()

        out = []
        for ann_id, row in self.store.run(pick, "claim"):
            try:
                out.append(Claim(self._metas[ann_id], Delivery.from_json(row)))
            except BadRecord as exc:
                log.warning("delivery of %s unreadable (%s): left alone", ann_id, exc)
        return out

    def _look(self, conn: psycopg.Connection, now: datetime, only: set[str] | None,
              accept: Callable[[AnnouncementMeta], bool] | None) -> None:
        """Read the queue's announcements (for ``pending``); ask ``accept`` about those that
        have become due and were not asked yet."""
        rows = conn.execute(
            "SELECT id, meta, status <> 'cancelled' AND (scheduled_for <= created_at"
            " OR scheduled_for <= %(now)s OR expires_at <= %(now)s)"
            " FROM announcements WHERE NOT finished"
            " AND (%(only)s::text[] IS NULL OR id = ANY(%(only)s::text[]))",
            {"now": now, "only": None if only is None else sorted(only)}).fetchall()
        for ann_id, meta_json, due in rows:
            if ann_id not in self._metas:
                try:
                    self._metas[ann_id] = AnnouncementMeta.from_json(meta_json)
                except BadRecord:
                    continue    # set aside by the next reader of the whole announcement
            if due and ann_id not in self._asked:
                self._asked.add(ann_id)
                if accept is None or accept(self._metas[ann_id]):
                    self._accepted.add(ann_id)

    def _settle_orphans(self) -> None:
        def settle(conn):
            for (ann_id,) in conn.execute(ORPHANS).fetchall():
                self.store.settle(conn, ann_id)

        self.store.run(settle, "settle")

    # -- recording ---------------------------------------------------------------------
    def record(self, ann_id: str, delivery: Delivery) -> None:
        self._records.call((ann_id, delivery.group, delivery.status, delivery.updated_at,
                            delivery.next_attempt_at, _dumps(delivery.to_json())))
        self._touched.add(ann_id)

    def _record(self, rows: list[tuple]) -> list[None]:
        """The results of every worker waiting to record, in one ``UPDATE`` (committed when
        it returns; a worker's own rows are never twice in one)."""
        self.store.all(RECORD, [list(column) for column in zip(*rows, strict=True)],
                       "record a send")
        return [None] * len(rows)

    def cancelled(self) -> set[str]:
        ids = sorted(self._accepted - self._cancelled)
        if ids:
            rows = self.store.run(lambda conn: conn.execute(
                "SELECT id FROM announcements WHERE id = ANY(%s) AND status = 'cancelled'",
                (ids,)).fetchall(), "poll cancels")
            self._cancelled |= {r[0] for r in rows}
        return set(self._cancelled)

    def pending(self) -> list[Claim]:
        ids = sorted(self._metas)
        if not ids:
            return []
        rows = self.store.run(lambda conn: conn.execute(
            "SELECT d.announcement, a.meta, d.row FROM deliveries d"
            " JOIN announcements a ON a.id = d.announcement"
            " WHERE d.announcement = ANY(%s) AND d.status = 'pending'"
            " ORDER BY d.announcement, d.position", (ids,)).fetchall(), "read pending")
        out = []
        for _, meta, row in rows:
            try:
                out.append(Claim(AnnouncementMeta.from_json(meta), Delivery.from_json(row)))
            except BadRecord:
                continue
        return out

    # -- closing -----------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._owner is None:
                return
            def finish(conn):
                for ann_id in sorted(self._touched):
                    self.store.settle(conn, ann_id)
                conn.execute("UPDATE deliveries SET claimed_by = NULL WHERE claimed_by = %s",
                             (self.token,))       # the rows still pending

            self.store.run(finish, "close the pass")
        finally:
            self._stopping.set()
            with self._owner_lock:
                self._drop_owner()
