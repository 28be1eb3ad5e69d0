"""A PostgreSQL database an older broadcaster built and filled, upgraded by this one.

The schema is made by the migration runner stopped at the older version
(``pgschema.upgrade(conn, target=)``, what that broadcaster's ``db upgrade``
did) and the rows are written with the statements that version's code used,
copied here (today's code writes columns that version did not have). Then the
store is opened as an office opens it after installing the new broadcaster:
refused until ``db upgrade``, then upgraded, read and written through the
store's own interface.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from broadcaster.store import StoreError, open_store, pgschema
from broadcaster.tickets.model import FINAL, Ticket
from broadcaster.tickets.store import StaleTicket, TicketStore
from tests.test_store_contract import T0, announcement, opened, sent, ticket

V6 = 6

# What the code of schema version 6 wrote (broadcaster/store/pgtickets.py and pgstore.py at
# that version): no resolved_at, create_key or write_key; the time columns as the program
# held the times, to the microsecond (the record keeps them to the second).
V6_TICKET = """INSERT INTO tickets (id, changed, day, version, status, working, category, grp,
  staff, created_at, deadline, record)
VALUES (%s, nextval('ticket_changes'), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""
V6_HISTORY = """INSERT INTO ticket_history (ticket, position, at, actor, status, change)
VALUES (%s, %s, %s, %s, %s, %s)"""
V6_ANNOUNCEMENT = """INSERT INTO announcements (id, day, created_at, scheduled_for, expires_at,
  status, finished, meta, add_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"""
V6_DELIVERY = """INSERT INTO deliveries (announcement, position, grp, status, updated_at,
  next_attempt_at, row) VALUES (%s, %s, %s, %s, %s, %s, %s)"""

GRIDS = {"g1": "grid-a", "g2": "grid-b"}
MS = timedelta(microseconds=1000)


def write_v6_ticket(conn: psycopg.Connection, t: Ticket, source: str | None = None) -> None:
    """``t`` as version 6 left it after its last change: its row, its history, its number's
    counter and the message it was opened from."""
    record = t.to_record()
    del record["history"]
    conn.execute(V6_TICKET, (t.id, t.day, t.version, t.status,
                             t.status not in FINAL or bool(t.notices), t.category, t.group,
                             t.staff, t.created_at, t.deadline, Jsonb(record)))
    for i, c in enumerate(t.history):
        conn.execute(V6_HISTORY, (t.id, i, c.at, c.by, c.status, Jsonb(c.as_json())))
    conn.execute("INSERT INTO counters (name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE"
                 " SET value = greatest(counters.value, excluded.value)",
                 (f"ticket-seq/{t.id[:7]}", int(t.id[8:])))
    if source is not None:
        conn.execute("INSERT INTO ticket_sources (day, source, ticket) VALUES (%s, %s, %s)",
                     (t.day, source, t.id))


def changed(t: Ticket, *steps: tuple[timedelta, str, str | None]) -> Ticket:
    """``t`` after people's changes (at T0 + offset, by, status): a version each."""
    for offset, by, status in steps:
        t.add(T0 + offset, by, status)
        t.version += 1
    return t


def snapshot(conn: psycopg.Connection) -> list:
    """Everything an upgrade may touch: the schema's versions, the tickets' tables, indexes."""
    return [conn.execute(sql).fetchall() for sql in (
        "SELECT version, name, applied_at FROM broadcaster_schema ORDER BY version",
        "SELECT * FROM tickets ORDER BY id",
        "SELECT * FROM ticket_history ORDER BY ticket, position",
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tickets' ORDER BY 1")]


def test_a_database_filled_at_version_6_upgrades_and_reads_and_writes_on(pg_server, tmp_path):
    url = pg_server.create_db("filled_at_v6")
    # times as datetime.now() gave them: with microseconds
    closed = changed(ticket("GL-1122-0001", at=T0 + 600 * MS, staff="wang-li"),
                     (timedelta(hours=1, milliseconds=800), "wang-li", "resolved"),
                     (timedelta(hours=2), "resident", "reopened"),
                     (timedelta(hours=5, milliseconds=300), "wang-li", "resolved"),
                     (timedelta(hours=6, milliseconds=100), "resident", "closed"))
    working = changed(ticket("GL-1122-0002", at=T0 + 250 * MS, group="g2"),
                      (timedelta(minutes=30, milliseconds=700), "zhang-san", "accepted"))
    working.staff = "zhang-san"
    resolved = changed(ticket("GL-1122-0003", at=T0 + timedelta(minutes=5, milliseconds=900)),
                       (timedelta(hours=3, milliseconds=999), "wang-li", "resolved"))
    ann = announcement("20261122-070000-abcdef", groups=("g1", "g2", "g3"), at=T0 + 400 * MS)
    sent(ann.deliveries[0])
    failed = ann.deliveries[1]
    failed.status, failed.attempts, failed.last_error = "failed", 1, "robot refused: 93000"
    failed.updated_at = T0 + timedelta(seconds=61, milliseconds=200)
    ann.meta.status = "sending"
    with psycopg.connect(url, autocommit=True) as conn:
        assert pgschema.upgrade(conn, target=V6) == [1, 2, 3, 4, 5, 6]
        for t, source in ((closed, None), (working, "wecom:chat-1:msg-9"), (resolved, None)):
            write_v6_ticket(conn, t, source)
        m = ann.meta
        conn.execute(V6_ANNOUNCEMENT, (m.id, m.created_at.date(), m.created_at, m.scheduled_for,
                                       m.expires_at, m.status, False, Jsonb(m.to_json()), "k6"))
        for i, d in enumerate(ann.deliveries, 1):
            conn.execute(V6_DELIVERY, (m.id, i, d.group, d.status, d.updated_at,
                                       d.next_attempt_at, Jsonb(d.to_json())))

    store = open_store(tmp_path / "var", url=url)
    with pytest.raises(StoreError, match="at schema version 6, this broadcaster needs "
                                         f"{pgschema.LATEST}: run `broadcaster db upgrade`"):
        store.tickets().find(closed.id)
    assert store.upgrade() == list(range(V6 + 1, pgschema.LATEST + 1))

    with psycopg.connect(url, autocommit=True) as conn:
        assert pgschema.applied(conn) == pgschema.LATEST
        columns = conn.execute("SELECT id, created_at, deadline, resolved_at, create_key,"
                               " write_key FROM tickets ORDER BY id").fetchall()
        history_at = conn.execute("SELECT at FROM ticket_history WHERE ticket = %s"
                                  " ORDER BY position", (closed.id,)).fetchall()
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'tickets'").fetchall()}
    # resolved_at back-filled from the history (the last resolution), every time column to
    # the second as the record keeps it (and as this version writes it)
    assert columns == [
        (closed.id, T0, T0 + timedelta(hours=48), T0 + timedelta(hours=5), None, None),
        (working.id, T0, T0 + timedelta(hours=48), None, None, None),
        (resolved.id, T0 + timedelta(minutes=5), T0 + timedelta(hours=48, minutes=5),
         T0 + timedelta(hours=3), None, None)]
    assert [r[0] for r in history_at] == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2),
                                          T0 + timedelta(hours=5), T0 + timedelta(hours=6)]
    assert {"tickets_figures", "tickets_create_key"} <= indexes

    # the rows read back whole through the store
    tickets = store.tickets()
    for t in (closed, working, resolved):
        assert tickets.get(t.id.lower()).to_record() == t.to_record()
    assert [t.id for t in tickets.open_tickets()] == [working.id, resolved.id]
    assert [t.id for t in tickets.archived_tickets(["2026-11"])] == [closed.id]
    assert sorted(t.id for t in tickets.every_ticket()) == [closed.id, working.id, resolved.id]
    windows = [(T0, T0 + timedelta(days=1)), (T0 + 500 * MS, T0 + timedelta(days=3)),
               (T0 + timedelta(hours=3), T0 + timedelta(hours=5))]
    for start, end in windows:   # counted from the columns as from the records
        assert tickets.figures(start, end, GRIDS, "(?)") == \
            TicketStore.figures(tickets, start, end, GRIDS, "(?)")
    day = tickets.figures(T0, T0 + timedelta(days=1), GRIDS, "(?)")
    assert (day.total.opened, day.total.resolved, day.total.overdue) == (3, 2, 0)
    assert day.by_grid["grid-a"].handling_s == (5 * 3600 + 3 * 3600 - 5 * 60) / 2
    assert day.by_status == {"closed": 1, "accepted": 1, "resolved": 1}
    assert tickets.figures(T0 + 500 * MS, T0 + timedelta(days=3), GRIDS,
                           "(?)").total.overdue == 1        # accepted, due at T0 + 48 h
    got = store.announcement(ann.id)
    assert [d.to_json() for d in got.deliveries] == [d.to_json() for d in ann.deliveries]
    assert [a.id for a in store.active()] == [ann.id]
    with store.dispatch() as session:
        claims = session.claim(T0 + timedelta(minutes=1))
        assert [c.delivery.group for c in claims] == ["g3"]
        session.record(ann.id, sent(claims[0].delivery))
    assert [a.id for a in store.archived()] == [ann.id]
    assert [d.status for d in store.announcement(ann.id).deliveries] == ["sent", "failed", "sent"]

    # and written on: numbering continues, a message opens its ticket once, changes keep
    # their versions and keys
    new, made = opened(tickets, at=T0 + timedelta(hours=7))
    assert made and new.id == "GL-1122-0004"
    again, made = opened(tickets, source="wecom:chat-1:msg-9")
    assert not made and again.id == working.id
    tickets.change(working.id, lambda t: t.add(T0 + timedelta(hours=8), "zhang-san", "resolved"),
                   expected_version=working.version)
    with pytest.raises(StaleTicket, match="changed since you read it"):
        tickets.change(working.id, lambda t: t.add(T0 + timedelta(hours=9), "li-si", "closed"),
                       expected_version=working.version)
    assert tickets.get(working.id).version == working.version + 1
    with psycopg.connect(url, autocommit=True) as conn:
        keys = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, create_key IS NOT NULL, write_key IS NOT NULL FROM tickets").fetchall()}
        before = snapshot(conn)
    assert keys == {closed.id: (False, False), working.id: (False, True),
                    resolved.id: (False, False), new.id: (True, False)}
    later = tickets.figures(T0, T0 + timedelta(days=1), GRIDS, "(?)")
    assert later == TicketStore.figures(tickets, T0, T0 + timedelta(days=1), GRIDS, "(?)")
    assert later.total.resolved == 3

    # a second upgrade finds nothing to do and changes nothing
    assert store.upgrade() == []
    with psycopg.connect(url, autocommit=True) as conn:
        assert snapshot(conn) == before
    store.close()


def test_ticket_times_written_to_the_microsecond_at_version_9_are_cut_by_version_10(
        pg_server, tmp_path):
    """Versions 6-9 wrote the program's microseconds into the time columns (a database that
    went to 9 kept them, its resolved_at back-filled with them): 10 cuts them to the second."""
    url = pg_server.create_db("filled_at_v9")
    done = changed(ticket("GL-1122-0001", at=T0 + 600 * MS),
                   (timedelta(hours=1, milliseconds=800), "wang-li", "resolved"))
    with psycopg.connect(url, autocommit=True) as conn:
        assert pgschema.upgrade(conn, target=6) == [1, 2, 3, 4, 5, 6]
        write_v6_ticket(conn, done)
        assert pgschema.upgrade(conn, target=9) == [7, 8, 9]
        assert conn.execute("SELECT resolved_at FROM tickets").fetchone()[0] == \
            T0 + timedelta(hours=1, milliseconds=800)
    store = open_store(tmp_path / "var", url=url)
    assert store.upgrade() == [10]
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT created_at, deadline, resolved_at FROM tickets").fetchone() \
            == (T0, T0 + timedelta(hours=48), T0 + timedelta(hours=1))
        assert [r[0] for r in conn.execute("SELECT at FROM ticket_history ORDER BY position")] \
            == [T0, T0 + timedelta(hours=1)]
    assert store.tickets().get(done.id).to_record() == done.to_record()
    store.close()
