"""The resident-message journal on PostgreSQL: the table ``inbound_journal``.

One row per record, in the order written (``position``), with its local day
for reading and retention. A batch is one transaction: committed means
durable, and the platform hears back only then. A message or join (``once``)
is inserted only if no server wrote one with its key before (a unique index),
so two inbound servers behind one address handle a platform's retry once.
Records are ``json`` (kept as written, keys in order). The records and the
promises: ``broadcaster.inbound.journal``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from broadcaster.store.base import JournalShelf

if TYPE_CHECKING:
    import psycopg

    from broadcaster.store.pgstore import PgStore

READ_BATCH = 2000


class PgJournal(JournalShelf):
    def __init__(self, store: PgStore):
        self.store = store

    def write(self, day: date, records: list[dict[str, Any]], unique: list[bool]) -> list[bool]:
        def add(conn: psycopg.Connection) -> list[bool]:
            written = []
            for record, once in zip(records, unique, strict=True):
                key = record.get("key")
                written.append(conn.execute(
                    "INSERT INTO inbound_journal (day, key, once, record) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (day, key if isinstance(key, str) else None, once,
                     json.dumps(record, ensure_ascii=False, separators=(",", ":")))).rowcount == 1)
            return written

        return self.store.run(add, "inbound journal")

    def read(self, first: date | None = None) -> Iterator[dict[str, Any]]:
        after = (first or date.min, 0)
        while True:     # in batches: a year of messages is not held at once
            rows = self.store.run(lambda conn, after=after: conn.execute(
                "SELECT day, position, record FROM inbound_journal WHERE (day, position) > (%s, %s)"
                " ORDER BY day, position LIMIT %s", (*after, READ_BATCH)).fetchall(),
                "inbound journal")
            for _, _, record in rows:
                if isinstance(record, dict):
                    yield record
            if len(rows) < READ_BATCH:
                return
            after = (rows[-1][0], rows[-1][1])

    def kept(self) -> bool:
        return self.store.run(lambda conn: conn.execute(
            "SELECT EXISTS (SELECT 1 FROM inbound_journal)").fetchone()[0], "inbound journal")

    def purge(self, before: date) -> int:
        return self.store.run(lambda conn: conn.execute(
            "WITH gone AS (DELETE FROM inbound_journal WHERE day < %s RETURNING day)"
            " SELECT count(DISTINCT day) FROM gone", (before,)).fetchone()[0], "inbound journal")
