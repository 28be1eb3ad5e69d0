"""The PostgreSQL schema: versioned migrations, applied by ``db upgrade``, checked at start.

``MIGRATIONS`` is the ordered list of ``(version, name, SQL)``; a database
records the versions applied in ``broadcaster_schema``. ``upgrade`` applies the
missing ones, each in its own transaction, under an advisory lock (two
``db upgrade``s at once: the second waits and finds nothing to do).
``check`` is what every store does on its first connection: a database
without the schema, behind this program, or ahead of it (a newer broadcaster
upgraded it) is refused with a message saying what to run.

The tables (every time is ``timestamptz``; a row's whole record is kept as
``jsonb`` next to the columns that queries filter on):

- ``announcements``: one row per announcement, queued or finished (``finished``:
  done or cancelled, i.e. in the archive); ``day`` is the date in its id, the
  key of the history index and of retention;
- ``deliveries``: one row per announcement and group; ``claimed_by`` is the
  dispatch session holding it (see ``pgdispatch``);
- ``documents``: small named JSON documents (schedule claims, rate limits,
  heartbeats), each read-modify-written under its row lock;
- ``counters``, ``collection_records``, ``history_index``, ``damaged``;
- ``rate_limits`` (version 2): each robot's bookings, booked under its row lock
  by every dispatcher (``pgratelimit``) in a function of the database
  (version 3 ``broadcaster_book``, one round trip a send);
- ``schedule_slots`` (version 3): one row per job and scheduled time fired, so
  a slot fires once across every machine (its primary key decides);
- ``announcements.add_key`` (version 3): a token made before an add's first
  try, so that a retry after a commit whose answer was lost finds its own row;
- ``broadcaster_book_many`` (version 4): the bookings of many sends in one
  statement (``pgbatch``: one round trip for every worker waiting to book);
  version 6 reads and writes each key's row by its primary key (a sixth of the
  server's time a booking), ``broadcaster_book`` dropped;
- ``tickets``, ``ticket_history``, ``ticket_sources`` (version 5): work orders
  with a version column, their history, the message each was opened from
  (``pgtickets``); ``inbound_journal``: the resident-message journal
  (``pgjournal``);
- ``tickets.resolved_at`` (version 7): when a ticket last entered ``resolved``
  (from its history), so that ``stats`` counts tickets in one query over the
  columns, and the index ``tickets_figures`` it reads them by;
- ``tickets.create_key`` (version 8): as ``add_key`` for announcements, a token
  made before a ticket's first try, so that a retry after a commit whose answer
  was lost returns the ticket made instead of numbering a second one;
- ``tickets.write_key`` (version 9): the same for a change: the token of the
  last write, so that a retry of a change that did land is not refused as stale
  (nor applied twice);
- version 10 cuts the tickets' time columns to the second, as the record keeps the
  times: earlier versions wrote them to the microsecond, so ``stats`` counted other
  times than the tickets show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broadcaster.store.base import StoreError

if TYPE_CHECKING:
    import psycopg

LOCK_NAMESPACE = 0x62726F     # advisory lock keys of broadcaster: (namespace, key)
UPGRADE_LOCK = 1

# in the booking functions: the rows of robots' first sends, then every key's row locked
# in key order (so two dispatchers booking at once never deadlock)
LOCK_KEYS = """    INSERT INTO rate_limits (key, window_s, sends, blocked_until)
        SELECT DISTINCT k, 60::float8, '{}'::float8[], 0::float8 FROM unnest(keys) AS k
        WHERE NOT EXISTS (SELECT 1 FROM rate_limits WHERE key = k)
        ORDER BY 1
        ON CONFLICT (key) DO NOTHING;
    PERFORM 1 FROM rate_limits WHERE key = ANY(keys) ORDER BY key FOR UPDATE;
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "initial", """
CREATE TABLE announcements (
    id            text PRIMARY KEY,
    day           date NOT NULL,                 -- the local day in the id
    created_at    timestamptz NOT NULL,
    scheduled_for timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    status        text NOT NULL,
    finished      boolean NOT NULL,              -- done or cancelled: archived
    added         bigserial,                     -- queue_mark(): changes on every add
    meta          jsonb NOT NULL
);
CREATE INDEX announcements_queue ON announcements (id) WHERE NOT finished;
CREATE INDEX announcements_archive ON announcements (day, id) WHERE finished;

CREATE TABLE deliveries (
    announcement    text NOT NULL REFERENCES announcements (id) ON DELETE CASCADE,
    position        integer NOT NULL,
    grp             text NOT NULL,
    status          text NOT NULL,
    updated_at      timestamptz,
    next_attempt_at timestamptz,
    claimed_by      bigint,                      -- the dispatch session holding it
    row             jsonb NOT NULL,
    PRIMARY KEY (announcement, position),
    UNIQUE (announcement, grp)
);
CREATE INDEX deliveries_pending ON deliveries (announcement, position) WHERE status = 'pending';
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;

CREATE TABLE documents (
    name text PRIMARY KEY,
    doc  json NOT NULL                           -- json, not jsonb: keys keep their order
);

CREATE TABLE counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);

CREATE TABLE collection_records (
    collection text NOT NULL,
    day        date NOT NULL,                    -- 1970-01-01 for a collection not by day
    key        text NOT NULL,
    position   bigserial,
    record     jsonb NOT NULL,
    PRIMARY KEY (collection, day, key)
);
CREATE INDEX collection_records_order ON collection_records (collection, day, position);

CREATE TABLE history_index (
    kind text NOT NULL,                          -- days | log
    day  date NOT NULL,
    data json NOT NULL,                          -- a Tally or a log index, as written
    PRIMARY KEY (kind, day)
);

CREATE TABLE damaged (
    id     bigserial PRIMARY KEY,
    name   text NOT NULL,
    place  text NOT NULL,
    reason text NOT NULL,
    at     timestamptz NOT NULL,
    data   jsonb
);
"""),
    (2, "shared rate limits", """
CREATE TABLE rate_limits (
    key           text PRIMARY KEY,              -- a robot, a bot token, an app
    window_s      double precision NOT NULL,
    sends         double precision[] NOT NULL,   -- booked send times (epoch seconds)
    blocked_until double precision NOT NULL      -- the platform said "too fast" until then
);
"""),
    (3, "one round trip a send, schedule slots, idempotent adds", """
CREATE TABLE schedule_slots (
    job     text NOT NULL,
    slot    timestamptz NOT NULL,                -- the scheduled time fired
    claimed timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, slot)
);

ALTER TABLE announcements ADD COLUMN add_key text;

-- delivery.ratelimit.RateLimiter.reserve over the bookings of every dispatcher, in
-- one statement: the earliest time all limits (key i: counts[i] sends a windows[i]
-- seconds, kept margins[i] longer) allow, booked if within max_wait seconds of at_now.
CREATE FUNCTION broadcaster_book(keys text[], counts integer[], windows float8[],
                                 margins float8[], at_now float8, max_wait float8,
                                 OUT ok boolean, OUT slot float8)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    recent float8[];
    i integer;
BEGIN
    INSERT INTO rate_limits (key, window_s, sends, blocked_until)   -- a robot's first send
        SELECT DISTINCT k, 60::float8, '{}'::float8[], 0::float8 FROM unnest(keys) AS k
        WHERE NOT EXISTS (SELECT 1 FROM rate_limits WHERE key = k)
        ORDER BY 1
        ON CONFLICT (key) DO NOTHING;
    slot := at_now;
    FOR r IN SELECT key, sends, blocked_until FROM rate_limits
             WHERE key = ANY(keys) ORDER BY key FOR UPDATE LOOP    -- a fixed order: no deadlock
        slot := greatest(slot, r.blocked_until);
        FOR i IN 1 .. cardinality(keys) LOOP
            CONTINUE WHEN keys[i] <> r.key;
            recent := ARRAY(SELECT s FROM unnest(r.sends) AS s
                            WHERE s > at_now - windows[i] - margins[i] ORDER BY s);
            IF cardinality(recent) >= counts[i] THEN
                slot := greatest(slot, recent[cardinality(recent) - counts[i] + 1]
                                       + windows[i] + margins[i]);
            END IF;
        END LOOP;
    END LOOP;
    ok := slot - at_now <= max_wait;
    IF ok THEN
        UPDATE rate_limits l
        SET window_s = b.window_s,
            sends = ARRAY(SELECT s FROM unnest(l.sends || b.booked) AS s
                          WHERE s > at_now - b.keep ORDER BY s)
        FROM (SELECT k, max(w) AS window_s, max(w + m) AS keep, array_agg(slot) AS booked
              FROM unnest(keys, windows, margins) AS u(k, w, m) GROUP BY k) b
        WHERE l.key = b.k;
    END IF;
END
$$;
"""),
    (4, "bookings of many sends in one statement", """
-- broadcaster_book for the sends 1..n in order, send reqs[i] limited by the key keys[i]
-- (counts[i], windows[i], margins[i]); every key's row locked first, in key order, so two
-- dispatchers booking batches never deadlock.
CREATE FUNCTION broadcaster_book_many(reqs integer[], keys text[], counts integer[],
                                      windows float8[], margins float8[], max_waits float8[],
                                      at_now float8)
RETURNS TABLE (ok boolean, slot float8)
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    picked integer[];
BEGIN
""" + LOCK_KEYS + """    FOR n IN 1 .. cardinality(max_waits) LOOP
        picked := ARRAY(SELECT i FROM generate_subscripts(reqs, 1) AS i WHERE reqs[i] = n
                        ORDER BY i);
        IF cardinality(picked) = 0 THEN
            ok := true;
            slot := at_now;
        ELSE
            SELECT b.ok, b.slot INTO ok, slot FROM broadcaster_book(
                ARRAY(SELECT keys[i] FROM unnest(picked) AS i),
                ARRAY(SELECT counts[i] FROM unnest(picked) AS i),
                ARRAY(SELECT windows[i] FROM unnest(picked) AS i),
                ARRAY(SELECT margins[i] FROM unnest(picked) AS i),
                at_now, max_waits[n]) AS b;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
"""),  # noqa: S608 - constant SQL, no input in it
    (5, "tickets and the resident-message journal", """
CREATE SEQUENCE ticket_changes;
CREATE TABLE tickets (
    id         text PRIMARY KEY,                 -- GL-1123-0042
    day        date NOT NULL,                    -- the local day it was opened
    version    integer NOT NULL,                 -- changes people made (refuses stale ones)
    changed    bigint NOT NULL,                  -- ticket_changes: moves on every write
    status     text NOT NULL,
    working    boolean NOT NULL,                 -- not closed/rejected, or messages to queue
    category   text NOT NULL,
    grp        text NOT NULL,
    staff      text,
    created_at timestamptz NOT NULL,
    deadline   timestamptz NOT NULL,
    record     jsonb NOT NULL                    -- Ticket.to_record() without its history
);
CREATE INDEX tickets_working ON tickets (deadline, id) WHERE working;
CREATE INDEX tickets_working_staff ON tickets (staff, deadline) WHERE working;
CREATE INDEX tickets_archive ON tickets (day, id) WHERE NOT working;

CREATE TABLE ticket_history (
    ticket   text NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    position integer NOT NULL,
    at       timestamptz NOT NULL,
    actor    text NOT NULL,
    status   text NOT NULL,
    change   jsonb NOT NULL,                     -- Change.as_json(): its time keeps its offset
    PRIMARY KEY (ticket, position)
);

CREATE TABLE ticket_sources (
    day    date NOT NULL,                        -- the day the message opened its ticket
    source text NOT NULL,                        -- platform:chat:message_id
    ticket text NOT NULL,
    PRIMARY KEY (day, source)
);

CREATE TABLE inbound_journal (
    position bigserial PRIMARY KEY,
    day      date NOT NULL,                      -- the local day it was written
    key      text,
    once     boolean NOT NULL,                   -- a message or join: one per key
    record   json NOT NULL                       -- as written, keys in order
);
CREATE INDEX inbound_journal_day ON inbound_journal (day, position);
CREATE UNIQUE INDEX inbound_journal_once ON inbound_journal (key) WHERE once;
"""),
    (6, "bookings by primary key", """
DROP FUNCTION broadcaster_book(text[], integer[], float8[], float8[], float8, float8);

-- the same answers as version 4: reqs is ascending (the sends' limits in order)
CREATE OR REPLACE FUNCTION broadcaster_book_many(reqs integer[], keys text[], counts integer[],
                                                 windows float8[], margins float8[],
                                                 max_waits float8[], at_now float8)
RETURNS TABLE (ok boolean, slot float8)
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    first integer := 1;
    i integer;
    booked float8[];
    blocked float8;
    recent float8[];
BEGIN
""" + LOCK_KEYS + """    FOR n IN 1 .. cardinality(max_waits) LOOP
        slot := at_now;
        i := first;
        WHILE i <= cardinality(reqs) AND reqs[i] = n LOOP
            SELECT sends, blocked_until INTO booked, blocked FROM rate_limits WHERE key = keys[i];
            slot := greatest(slot, blocked);
            recent := ARRAY(SELECT s FROM unnest(booked) AS s
                            WHERE s > at_now - windows[i] - margins[i] ORDER BY s);
            IF cardinality(recent) >= counts[i] THEN
                slot := greatest(slot, recent[cardinality(recent) - counts[i] + 1]
                                       + windows[i] + margins[i]);
            END IF;
            i := i + 1;
        END LOOP;
        ok := slot - at_now <= max_waits[n];
        IF ok THEN
            FOR j IN first .. i - 1 LOOP
                UPDATE rate_limits SET window_s = windows[j],
                    sends = ARRAY(SELECT s FROM unnest(sends || slot) AS s
                                  WHERE s > at_now - windows[j] - margins[j] ORDER BY s)
                WHERE key = keys[j];
            END LOOP;
        END IF;
        first := i;
        RETURN NEXT;
    END LOOP;
END
$$;
"""),  # noqa: S608 - constant SQL, no input in it
    (7, "ticket figures from columns", """
ALTER TABLE tickets ADD COLUMN resolved_at timestamptz;    -- when it last entered resolved
UPDATE tickets t SET resolved_at = h.at
FROM (SELECT DISTINCT ON (ticket) ticket, at FROM ticket_history WHERE status = 'resolved'
      ORDER BY ticket, position DESC) h
WHERE h.ticket = t.id;
-- the archived tickets of stats' window, read from the index alone
CREATE INDEX tickets_figures ON tickets (day) INCLUDE (grp, status, created_at, resolved_at, deadline)
    WHERE NOT working;
"""),
    (8, "idempotent ticket creation", """
ALTER TABLE tickets ADD COLUMN create_key text;
CREATE UNIQUE INDEX tickets_create_key ON tickets (create_key) WHERE create_key IS NOT NULL;
"""),
    (9, "idempotent ticket changes", """
ALTER TABLE tickets ADD COLUMN write_key text;
"""),
    (10, "ticket times to the second", """
-- as the record keeps them: versions 6-9 wrote the program's microseconds, so stats
-- (which reads the columns) could count other times than the tickets show
UPDATE ticket_history SET at = date_trunc('second', at) WHERE at <> date_trunc('second', at);
UPDATE tickets SET created_at = date_trunc('second', created_at),
                   deadline = date_trunc('second', deadline),
                   resolved_at = date_trunc('second', resolved_at)
WHERE created_at <> date_trunc('second', created_at)
   OR deadline <> date_trunc('second', deadline)
   OR resolved_at <> date_trunc('second', resolved_at);
"""),
]

LATEST = MIGRATIONS[-1][0]


def applied(conn: psycopg.Connection) -> int | None:
    """The schema version of the database (None: no broadcaster schema at all)."""
    exists = conn.execute("SELECT to_regclass('broadcaster_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return None
    return conn.execute("SELECT coalesce(max(version), 0) FROM broadcaster_schema").fetchone()[0]


def check(conn: psycopg.Connection, where: str) -> None:
    """Refuse a database whose schema this program does not know (``StoreError``)."""
    version = applied(conn)
    if version is None or version == 0:
        raise StoreError(f"database {where} has no broadcaster schema: run `broadcaster db upgrade`")
    if version < LATEST:
        raise StoreError(f"database {where} is at schema version {version}, this broadcaster "
                         f"needs {LATEST}: run `broadcaster db upgrade`")
    if version > LATEST:
        raise StoreError(f"database {where} is at schema version {version}, newer than this "
                         f"broadcaster knows ({LATEST}): upgrade broadcaster before running it")


def upgrade(conn: psycopg.Connection, target: int = LATEST) -> list[int]:
    """Apply the missing migrations (``conn`` in autocommit); returns the versions applied.

    ``target``: stop after that version (tests build a database as an older broadcaster
    left it); ``db upgrade`` always goes to ``LATEST``."""
    done: list[int] = []
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, UPGRADE_LOCK))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS broadcaster_schema ("
                     " version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
        current = applied(conn) or 0
        if current > LATEST:
            check(conn, "")
        for version, name, sql in MIGRATIONS:
            if version <= current or version > target:
                continue
            with conn.transaction():
                conn.execute(sql)
                conn.execute("INSERT INTO broadcaster_schema (version, name) VALUES (%s, %s)",
                             (version, name))
            done.append(version)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, UPGRADE_LOCK))
    return done
