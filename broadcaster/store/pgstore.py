"""The store on PostgreSQL: one queue shared by many machines (``BROADCASTER_DATABASE_URL``).

Same promises as the embedded store (``broadcaster.store.base``), kept by the
database instead of a file lock:

- every write is a committed transaction when the call returns;
- ``change`` and ``state`` hold the row lock (``SELECT … FOR UPDATE``) of what
  they read-modify-write, so staff terminals and daemons on different machines
  serialise per announcement and per document, not globally;
- a schedule slot is fired by one machine only: ``claim_slot`` inserts it into
  ``schedule_slots``, whose primary key lets one caller in;
- dispatch sessions claim bounded batches with ``FOR UPDATE SKIP LOCKED``
  (``broadcaster.store.pgdispatch``), so dispatchers run side by side and
  ``dispatch_lock`` is a no-op;
- the history index (``broadcaster.store.history``) is kept in the table
  ``history_index``, written in the transaction that archives an announcement,
  under an advisory lock;
- a lost connection (the server restarting, a network cut) is retried with
  back-off for up to ``RETRY_FOR`` seconds, logging a warning, before the
  call fails with ``StoreError``.

A thread inside ``transaction()`` or ``state()`` keeps one connection, and
the store calls it makes meanwhile run on it (re-entrant, like the file lock).
The schema is checked on the first connection (``pgschema.check``). Nothing of
the queue, its history, the tickets (``pgtickets``) or the resident-message
journal (``pgjournal``) is written under the state directory; it holds local
locks and caches only (``locks_dir``, ``dir``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from broadcaster.redact import redact
from broadcaster.store import pgschema
from broadcaster.store.base import Collection, JournalShelf, R, Store, StoreError, check_name
from broadcaster.store.durable import make_dirs
from broadcaster.store.history import History, id_day
from broadcaster.store.records import (
    Announcement,
    AnnouncementMeta,
    BadRecord,
    Damaged,
    Delivery,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from broadcaster.tickets.store import TicketStore

log = logging.getLogger("broadcaster.store")

T = TypeVar("T")
STORE_LOCK = 2          # advisory lock key of transaction(): the file store's store lock
HISTORY_LOCK = 3        # held while the history index is written
RETRY_FOR = 300.0       # seconds a lost database is waited for (BROADCASTER_DATABASE_RETRY)
SLOTS_KEPT = timedelta(days=7)   # schedule slots fired are remembered this long


def env_seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def delivery_params(ann_id: str, position: int, d: Delivery) -> tuple:
    from psycopg.types.json import Jsonb  # start-up time: loaded when first used

    return (ann_id, position, d.group, d.status, d.updated_at, d.next_attempt_at, Jsonb(d.to_json()))


class PgStore(Store):
    """The ``Store`` on PostgreSQL at ``url``; ``state_dir`` keeps local locks and caches."""

    def __init__(self, url: str, state_dir: Path | str):
        self.url = url
        self.location = redact(url)
        self.dir = Path(state_dir)
        self.locks_dir = self.dir / "locks"
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._local = threading.local()
        self._checked = False

    # -- connections -------------------------------------------------------------------
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    from psycopg_pool import ConnectionPool  # start-up time: loaded when first used

                    self._pool = ConnectionPool(
                        self.url, min_size=1, max_size=int(env_seconds("BROADCASTER_DATABASE_POOL", 20)),
                        timeout=10, open=True,
                        kwargs={"connect_timeout": 10}, name="broadcaster")
        return self._pool

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        """A connection of its own, outside the pool (a dispatch session's lock holder)."""
        import psycopg  # start-up time: loaded when first used

        return psycopg.connect(self.url, connect_timeout=10, **kwargs)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @contextmanager
    def _pooled(self) -> Iterator[psycopg.Connection]:
        """A connection of the pool (the schema checked on the very first one)."""
        if not self._checked:
            with self.connect() as first:      # errors come straight, not after a pool timeout
                pgschema.check(first, self.location)
            self._checked = True
        with self.pool().connection() as conn:
            yield conn

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection]:
        """A connection in a transaction: this thread's current one, or a new one committed on
        a clean exit (rolled back on an exception)."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self._pooled() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    def run(self, fn: Callable[[psycopg.Connection], T], what: str = "") -> T:
        """``fn(conn)`` in one transaction, retried while the database cannot be reached."""
        if getattr(self._local, "conn", None) is not None:
            return fn(self._local.conn)
        waiting = Waiting(self.location, what)
        while True:
            try:
                with self.tx() as conn:
                    return fn(conn)
            except Exception as exc:
                waiting.after(exc)

    def all(self, sql: str, params: Any, what: str = "") -> list[tuple]:
        """One statement that is a transaction of its own: sent in autocommit, so the server
        commits it as it answers (one round trip, no BEGIN and COMMIT); its rows (none for
        a statement without any). Inside this thread's transaction it joins that one.
        Retried as ``run``, so a statement whose answer was lost may run twice: give it
        one that may."""
        import psycopg  # start-up time: loaded when first used

        current = getattr(self._local, "conn", None)
        if current is not None:
            return _rows(current.execute(sql, params))
        waiting = None
        while True:
            try:
                with self._pooled() as conn:
                    conn.autocommit = True
                    try:
                        return _rows(conn.execute(sql, params))
                    finally:
                        with contextlib.suppress(psycopg.Error):   # a broken one is dropped
                            conn.autocommit = False
            except Exception as exc:
                waiting = waiting or Waiting(self.location, what)
                waiting.after(exc)

    @contextmanager
    def locked(self, first: Callable[[psycopg.Connection], T], what: str
               ) -> Iterator[tuple[psycopg.Connection, T]]:
        """A transaction kept open for the caller, begun with ``first(conn)`` (which takes
        the locks), retried while the database cannot be reached; committed on a clean exit."""
        if getattr(self._local, "conn", None) is not None:
            yield self._local.conn, first(self._local.conn)
            return
        waiting = Waiting(self.location, what)
        while True:
            stack = ExitStack()
            try:
                conn = stack.enter_context(self.tx())
                value = first(conn)
                break
            except Exception as exc:
                stack.__exit__(type(exc), exc, exc.__traceback__)
                waiting.after(exc)
        with stack:
            yield conn, value

    # -- setup and locks ----------------------------------------------------------------
    def ensure(self) -> None:
        make_dirs(self.dir, self.locks_dir)        # local locks only: the state is in the database
        if not self._checked:
            self.run(lambda conn: None, "schema check")

    def upgrade(self) -> list[int]:
        """Apply the missing migrations (``db upgrade``); returns the versions applied."""
        with self.connect(autocommit=True) as conn:
            return pgschema.upgrade(conn)

    @contextmanager
    def dispatch_lock(self, *, wait: float | None = 0) -> Iterator[None]:
        yield           # claims are shared safely: dispatchers run side by side

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self.tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (pgschema.LOCK_NAMESPACE, STORE_LOCK))
            yield

    # -- the queue ---------------------------------------------------------------------
    def add_announcement(self, ann: Announcement) -> str:
        """Insert ``ann`` (a fresh id if its id is taken). Idempotent: a key made before the
        first try marks the row, so a retry after a commit whose answer was lost finds its
        own row and returns its id instead of queuing the announcement twice."""
        from psycopg.types.json import Jsonb  # start-up time: loaded when first used

        key = secrets.token_hex(16)

        def add(conn: psycopg.Connection) -> str:
            m = ann.meta
            while True:
                mine = conn.execute(
                    "INSERT INTO announcements (id, day, created_at, scheduled_for, expires_at,"
                    " status, finished, meta, add_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING RETURNING id",
                    (m.id, id_day(m.id), m.created_at, m.scheduled_for, m.expires_at, m.status,
                     ann.finished, Jsonb(m.to_json()), key)).fetchone()
                if mine:
                    break
                if conn.execute("SELECT add_key = %s FROM announcements WHERE id = %s",
                                (key, m.id)).fetchone() == (True,):
                    return m.id                     # this add, committed by an earlier try
                m.id = m.id[:16] + secrets.token_hex(3)     # same second, same 24 random bits
            with conn.cursor().copy(
                    "COPY deliveries (announcement, position, grp, status, updated_at,"
                    " next_attempt_at, row) FROM STDIN") as copy:
                for i, d in enumerate(ann.deliveries, 1):
                    copy.write_row(delivery_params(m.id, i, d))
            return m.id

        return self.run(add, "add announcement")

    def _build(self, conn: psycopg.Connection, meta_json: dict, *, as_read: bool = True
               ) -> Announcement | None:
        """The announcement with its rows (None if damaged: set aside); ``as_read``: with
        its status as its rows make it, as readers see it before the dispatcher settles it."""
        ann_id = meta_json.get("id", "?") if isinstance(meta_json, dict) else "?"
        rows = conn.execute("SELECT row FROM deliveries WHERE announcement = %s ORDER BY position",
                            (ann_id,)).fetchall()
        try:
            ann = Announcement(AnnouncementMeta.from_json(meta_json),
                               [Delivery.from_json(r[0]) for r in rows])
            ann.check()
        except BadRecord as exc:
            self.set_aside_announcement(ann_id, meta_json, [r[0] for r in rows], str(exc))
            return None
        if as_read:
            _settle_on_read(ann)
        return ann

    def announcement(self, ann_id: str) -> Announcement | None:
        def read(conn):
            row = conn.execute("SELECT meta FROM announcements WHERE id = %s", (ann_id,)).fetchone()
            return None if row is None else self._build(conn, row[0])

        return self.run(read, "read announcement")

    def _many(self, where: str, params: tuple = ()) -> list[Announcement]:
        def read(conn):
            metas = conn.execute(f"SELECT meta FROM announcements WHERE {where} ORDER BY id",  # noqa: S608
                                 params).fetchall()
            return [a for a in (self._build(conn, m[0]) for m in metas) if a is not None]

        return self.run(read, "read announcements")

    def active(self) -> list[Announcement]:
        return self._many("NOT finished")

    def archived(self, since: datetime | None = None) -> list[Announcement]:
        if since is None:
            return self._many("finished")
        return self._many("finished AND day >= %s", (since.replace(day=1).date(),))

    def change(self, ann_id: str, fn: Callable[[Announcement], list[Delivery]]) -> Announcement:
        def apply(conn):
            row = conn.execute("SELECT meta, finished FROM announcements WHERE id = %s FOR UPDATE",
                               (ann_id,)).fetchone()
            ann = None if row is None else self._build(conn, row[0])
            if ann is None:
                raise KeyError(ann_id)
            was_finished = row[1]
            changed = fn(ann)
            self._write(conn, ann, changed, was_finished)
            return ann

        return self.run(apply, "change announcement")

    def _write(self, conn: psycopg.Connection, ann: Announcement, changed: list[Delivery],
               was_finished: bool) -> None:
        """Write ``ann``'s meta and the ``changed`` rows; archive or reopen it as it (un)finishes."""
        from psycopg.types.json import Jsonb  # start-up time: loaded when first used

        m = ann.meta
        finished = ann.finished
        conn.execute("UPDATE announcements SET status = %s, finished = %s, scheduled_for = %s,"
                     " expires_at = %s, meta = %s WHERE id = %s",
                     (m.status, finished, m.scheduled_for, m.expires_at, Jsonb(m.to_json()), m.id))
        if changed:
            with conn.cursor() as cur:
                cur.executemany(
                    "UPDATE deliveries SET status = %s, updated_at = %s, next_attempt_at = %s,"
                    " row = %s WHERE announcement = %s AND grp = %s",
                    [(d.status, d.updated_at, d.next_attempt_at, Jsonb(d.to_json()), m.id, d.group)
                     for d in changed])
        if finished != was_finished:
            self.lock_history(conn)
            if finished:
                self.history.record(m.to_json(), [d.to_json() for d in ann.deliveries])
            else:
                self.history.forget(m.id)

    def settle(self, conn: psycopg.Connection, ann_id: str) -> None:
        """Recompute an announcement's status from its rows (archiving it when it is done)."""
        row = conn.execute("SELECT meta, finished FROM announcements WHERE id = %s FOR UPDATE",
                           (ann_id,)).fetchone()
        if row is None or row[1]:
            return
        ann = self._build(conn, row[0], as_read=False)
        if ann is None:
            return
        before = ann.meta.to_json()
        ann.settle(datetime.now(ann.meta.created_at.tzinfo))
        if ann.meta.to_json() != before:
            self._write(conn, ann, [], False)

    def lock_history(self, conn: psycopg.Connection) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (pgschema.LOCK_NAMESPACE, HISTORY_LOCK))

    # -- the history index and retention ---------------------------------------------
    @cached_property
    def history(self) -> History:
        return History(PgShelf(self), load=self.load_archived, listing=self.archived_by_day,
                       lock=self._history_tx, load_group=self.load_archived_group)

    @contextmanager
    def _history_tx(self) -> Iterator[None]:
        with self.tx() as conn:
            self.lock_history(conn)
            yield

    def load_archived(self, ann_id: str, *, group: str | None = None, status: str | None = None
                      ) -> tuple[dict, list[dict]] | None:
        """``history.Loader``: a group's row comes through the index on (announcement, grp)."""
        def read(conn):
            row = conn.execute("SELECT meta FROM announcements WHERE id = %s AND finished",
                               (ann_id,)).fetchone()
            if row is None:
                return None
            where, params = ["announcement = %s"], [ann_id]
            for column, value in (("grp", group), ("status", status)):
                if value is not None:
                    where.append(f"{column} = %s")
                    params.append(value)
            rows = conn.execute(f"SELECT row FROM deliveries WHERE {' AND '.join(where)}"  # noqa: S608
                                " ORDER BY position", params).fetchall()
            return row[0], [r[0] for r in rows]

        return self.run(read, "read history")

    def load_archived_group(self, ann_ids: list[str], group: str, status: str | None
                            ) -> dict[str, tuple[dict, list[dict]]]:
        """``history.GroupLoader``: two queries whatever the number of announcements (the
        rows through the index on (announcement, grp))."""
        def read(conn):
            found = {ann_id: (meta, []) for ann_id, meta in conn.execute(
                "SELECT id, meta FROM announcements WHERE id = ANY(%s) AND finished",
                (ann_ids,)).fetchall()}
            rows = conn.execute(
                "SELECT announcement, row FROM deliveries WHERE announcement = ANY(%s) AND grp = %s"
                " AND (%s::text IS NULL OR status = %s) ORDER BY announcement, position",
                (list(found), group, status, status)).fetchall()
            for ann_id, row in rows:
                found[ann_id][1].append(row)
            return found

        return self.run(read, "read history")

    def archived_by_day(self, months: list[str] | None) -> dict[date, set[str]]:
        def read(conn):
            if months is None:
                return conn.execute("SELECT day, id FROM announcements WHERE finished").fetchall()
            if not months:
                return []
            first = date(int(min(months)[:4]), int(min(months)[5:7]), 1)
            last = date(int(max(months)[:4]), int(max(months)[5:7]), 28) + timedelta(days=4)
            rows = conn.execute(       # a range the index serves, then the months asked for
                "SELECT day, id FROM announcements WHERE finished AND day >= %s AND day < %s",
                (first, last.replace(day=1))).fetchall()
            return [(day, i) for day, i in rows if f"{day:%Y-%m}" in months]

        out: dict[date, set[str]] = {}
        for day, ann_id in self.run(read, "read history"):
            out.setdefault(day, set()).add(ann_id)
        return out

    def drop_before(self, day: date) -> int:
        first = day.replace(day=1)

        def drop(conn):
            self.lock_history(conn)
            gone = conn.execute("DELETE FROM announcements WHERE finished AND day < %s",
                                (first,)).rowcount
            self.history.drop_before(first)
            return gone

        return self.run(drop, "retention")

    def nothing_queued(self) -> bool:
        """No announcement that is not finished (one probe of the partial index
        ``announcements_queue``): a dispatcher's claims and results are on such ones."""
        return not self.all("SELECT 1 FROM announcements WHERE NOT finished LIMIT 1", (),
                            "queue")

    def queue_mark(self) -> object:
        return self.run(lambda conn: conn.execute(
            "SELECT last_value, is_called FROM announcements_added_seq").fetchone(), "queue mark")

    def dispatch(self):
        from broadcaster.store.pgdispatch import PgDispatchSession  # start-up time: loaded when first used

        make_dirs(self.dir, self.locks_dir)     # the replies lock (``serve``) is local

        return PgDispatchSession(self)

    def claim_slot(self, job: str, slot: datetime) -> bool:
        """One row in ``schedule_slots`` per job and slot: the primary key lets one caller
        in, whichever machine it runs on (in the caller's transaction, ``state``'s, if any).
        Slots older than ``SLOTS_KEPT`` are forgotten: catch-up never reaches that far."""
        def claim(conn):
            conn.execute("DELETE FROM schedule_slots WHERE job = %s AND slot < %s",
                         (job, slot - SLOTS_KEPT))
            return conn.execute("INSERT INTO schedule_slots (job, slot) VALUES (%s, %s)"
                                " ON CONFLICT DO NOTHING RETURNING true", (job, slot)).fetchone()

        return bool(self.run(claim, "schedule slot"))

    def rate_limiter(self):
        from broadcaster.store.pgratelimit import PgRateLimiter  # start-up time: loaded when first used

        return PgRateLimiter(self)

    # -- small documents ---------------------------------------------------------------
    @contextmanager
    def state(self, name: str, *, check: Callable[[dict], None] | None = None,
              rebuild: Callable[[], dict] | None = None) -> Iterator[dict[str, Any]]:
        from psycopg.types.json import Json  # start-up time: loaded when first used

        check_name("state", name)

        def lock(conn):
            conn.execute("INSERT INTO documents (name, doc) VALUES (%s, '{}')"
                         " ON CONFLICT (name) DO NOTHING", (name,))
            return conn.execute("SELECT doc FROM documents WHERE name = %s FOR UPDATE",
                                (name,)).fetchone()[0]

        with self.locked(lock, f"state {name}") as (conn, raw):
            data = self._decode_doc(name, raw, check, rebuild)
            before = json.dumps(data, sort_keys=True, default=str)
            yield data
            after = json.dumps(data, sort_keys=True, default=str)
            if after != before or data is not raw:
                conn.execute("UPDATE documents SET doc = %s WHERE name = %s",
                             (Json(data, dumps=_dumps), name))

    def read_state(self, name: str, *, check: Callable[[dict], None] | None = None,
                   rebuild: Callable[[], dict] | None = None) -> dict[str, Any]:
        check_name("state", name)
        row = self.run(lambda conn: conn.execute("SELECT doc FROM documents WHERE name = %s",
                                                 (name,)).fetchone(), "read state")
        return {} if row is None else dict(self._decode_doc(name, row[0], check, rebuild))

    def _decode_doc(self, name: str, raw: Any, check, rebuild) -> dict[str, Any]:
        try:
            if not isinstance(raw, dict):
                raise BadRecord(f"expected an object, got {type(raw).__name__}")
            if check is not None:
                check(raw)
            return raw
        except BadRecord as exc:
            self.set_aside(f"state {name}", "documents", str(exc), raw)
            log.warning("state %s rebuilt%s", name, " from what the store still knows"
                        if rebuild is not None else " empty")
            return rebuild() if rebuild is not None else {}

    def next_number(self, name: str) -> int:
        return self.run(lambda conn: conn.execute(
            "INSERT INTO counters (name, value) VALUES (%s, 1) ON CONFLICT (name)"
            " DO UPDATE SET value = counters.value + 1 RETURNING value", (name,)).fetchone()[0],
            "counter")

    # -- collections -------------------------------------------------------------------
    def collection(self, name: str, record: type[R], *, by_day: bool = False) -> Collection[R]:
        from broadcaster.store.pgcollections import PgCollection  # start-up time: loaded when first used

        return PgCollection(self, check_name("collection", name), record, by_day=by_day)

    # -- tickets and resident messages --------------------------------------------------
    def tickets(self) -> TicketStore:
        from broadcaster.store.pgtickets import PgTicketStore  # start-up time: loaded when first used

        return PgTicketStore(self)

    def journal(self) -> JournalShelf:
        from broadcaster.store.pgjournal import PgJournal  # start-up time: loaded when first used

        return PgJournal(self)

    # -- damage ------------------------------------------------------------------------
    def set_aside(self, name: str, place: str, reason: str, data: Any) -> None:
        """Note a record that failed validation in ``damaged`` (its content kept there)."""
        from psycopg.types.json import Jsonb  # start-up time: loaded when first used

        self.run(lambda conn: conn.execute(
            "INSERT INTO damaged (name, place, reason, at, data) VALUES (%s, %s, %s, %s, %s)",
            (name, place, reason, datetime.now(UTC), Jsonb(data))), "set aside")
        log.warning("%s is damaged (%s): set aside in table damaged; everything else goes on",
                    name, reason)

    def set_aside_announcement(self, ann_id: str, meta: Any, rows: list, reason: str) -> None:
        self.set_aside(f"announcement {ann_id}", "announcements", reason,
                       {"meta": meta, "deliveries": rows})
        self.run(lambda conn: conn.execute("DELETE FROM announcements WHERE id = %s", (ann_id,)),
                 "set aside")

    def damaged(self) -> list[Damaged]:
        rows = self.run(lambda conn: conn.execute(
            "SELECT name, place, reason, at, id FROM damaged ORDER BY at, id").fetchall(), "damaged")
        return [Damaged(name, f"{self.location} table {place} (damaged #{i})", reason, at)
                for name, place, reason, at, i in rows]


def _refused(exc: Exception) -> bool:
    """The server answered and said no (no such database, bad password, cancelled): waiting
    will not help. A server that does not answer has no SQLSTATE."""
    state = getattr(exc, "sqlstate", None) or ""
    text = str(exc)
    return (state[:2] in ("28", "3D", "57") and state != "57P01") or \
        "does not exist" in text or "authentication failed" in text


def _rows(cur: psycopg.Cursor) -> list[tuple]:
    return cur.fetchall() if cur.description is not None else []


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)


def _settle_on_read(ann: Announcement) -> None:
    """Show results recorded since the announcement was last settled (as the file store's
    journal overlay does): its status as the rows make it."""
    if ann.finished:
        return
    stamps = [d.updated_at for d in ann.deliveries if d.updated_at is not None]
    last = max(stamps) if stamps else None
    if last is not None and (ann.meta.updated_at is None or last > ann.meta.updated_at):
        ann.settle(last)


class Waiting:
    """Back-off while the database cannot be reached: ``after(exc)`` sleeps and returns when
    ``exc`` is a lost connection (logged once), raises ``StoreError`` once ``RETRY_FOR``
    seconds are spent or the server refused, and re-raises anything else."""

    def __init__(self, location: str, what: str):
        self.location = location
        self.what = what
        self.started = time.monotonic()
        self.delay = 0.2
        self.warned = False

    def after(self, exc: Exception) -> None:
        import psycopg  # start-up time: loaded when first used
        from psycopg_pool import PoolTimeout  # start-up time: loaded when first used

        if not isinstance(exc, psycopg.OperationalError | PoolTimeout):
            raise exc
        if _refused(exc):
            raise StoreError(f"database {self.location}: {redact(str(exc).strip())}") from None
        waited = time.monotonic() - self.started
        if waited >= env_seconds("BROADCASTER_DATABASE_RETRY", RETRY_FOR):
            raise StoreError(f"database {self.location} unreachable for {waited:.0f} s"
                             f"{f' ({self.what})' if self.what else ''}: {redact(exc)}") from None
        if not self.warned:
            log.warning("database %s unreachable (%s): retrying", self.location,
                        redact(str(exc).strip()))
            self.warned = True
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, 2.0)


class PgShelf:
    """The history index in the table ``history_index`` (see ``history.Shelf``)."""

    def __init__(self, store: PgStore):
        self.store = store

    def read(self, kind: str, day: date) -> dict | None:
        row = self.store.run(lambda conn: conn.execute(
            "SELECT data FROM history_index WHERE kind = %s AND day = %s", (kind, day)).fetchone(),
            "read history")
        return row[0] if row is not None and isinstance(row[0], dict) else None

    def save(self, kind: str, day: date, data: dict) -> None:
        from psycopg.types.json import Json  # start-up time: loaded when first used

        self.store.run(lambda conn: conn.execute(
            "INSERT INTO history_index (kind, day, data) VALUES (%s, %s, %s)"
            " ON CONFLICT (kind, day) DO UPDATE SET data = excluded.data",
            (kind, day, Json(data, dumps=_dumps))), "write history")

    def delete(self, kind: str, day: date) -> None:
        self.store.run(lambda conn: conn.execute(
            "DELETE FROM history_index WHERE kind = %s AND day = %s", (kind, day)), "write history")

    def dates(self, kind: str, first: date | None, last: date | None) -> list[date]:
        rows = self.store.run(lambda conn: conn.execute(
            "SELECT day FROM history_index WHERE kind = %s"
            " AND day >= coalesce(%s::date, '-infinity') AND day <= coalesce(%s::date, 'infinity')"
            " ORDER BY day", (kind, first, last)).fetchall(), "read history")
        return [r[0] for r in rows]
