"""Collections on PostgreSQL: the table ``collection_records``, one row per record.

A collection not kept by day uses the day ``1970-01-01`` for all its rows;
``position`` (a sequence) keeps insertion order. A row whose record its type
rejects is set aside (``damaged``) and skipped, like a damaged file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING, Generic

from broadcaster.store.base import Collection, R
from broadcaster.store.records import BadRecord

if TYPE_CHECKING:
    from broadcaster.store.pgstore import PgStore

NO_DAY = date(1970, 1, 1)


class PgCollection(Collection[R], Generic[R]):
    def __init__(self, store: PgStore, name: str, record: type[R], *, by_day: bool):
        self.store = store
        self.name = name
        self.record = record
        self.by_day = by_day

    def _day(self, day: date | None) -> date:
        return self._check_day(day) or NO_DAY

    def _decode(self, key: str, day: date, data) -> R | None:
        try:
            return self.record.from_json(data)
        except BadRecord as exc:
            what = f"collection {self.name}" + (f" ({day})" if self.by_day else "")
            self.store.set_aside(what, "collection_records", f"record {key[:40]!r}: {exc}",
                                 {"key": key, "record": data})
            self.store.run(lambda conn: conn.execute(
                "DELETE FROM collection_records WHERE collection = %s AND day = %s AND key = %s",
                (self.name, day, key)))
            return None

    def add(self, key: str, record: R, *, day: date | None = None) -> bool:
        from psycopg.types.json import Jsonb  # start-up time: loaded when first used

        return self.store.run(lambda conn: conn.execute(
            "INSERT INTO collection_records (collection, day, key, record) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING", (self.name, self._day(day), key, Jsonb(record.to_json()))
        ).rowcount == 1, "collection")

    def put(self, key: str, record: R, *, day: date | None = None) -> None:
        from psycopg.types.json import Jsonb  # start-up time: loaded when first used

        self.store.run(lambda conn: conn.execute(
            "INSERT INTO collection_records (collection, day, key, record) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (collection, day, key) DO UPDATE SET record = excluded.record",
            (self.name, self._day(day), key, Jsonb(record.to_json()))), "collection")

    def get(self, key: str, *, day: date | None = None) -> R | None:
        d = self._day(day)
        row = self.store.run(lambda conn: conn.execute(
            "SELECT record FROM collection_records WHERE collection = %s AND day = %s AND key = %s",
            (self.name, d, key)).fetchone(), "collection")
        return None if row is None else self._decode(key, d, row[0])

    def update(self, key: str, change: Callable[[R | None], R | None], *,
               day: date | None = None) -> R | None:
        from psycopg.types.json import Jsonb  # start-up time: loaded when first used

        d = self._day(day)

        def apply(conn):
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self.name}/{d}/{key}",))
            row = conn.execute("SELECT record FROM collection_records WHERE collection = %s"
                               " AND day = %s AND key = %s FOR UPDATE", (self.name, d, key)).fetchone()
            current = None if row is None else self._decode(key, d, row[0])
            new = change(current)
            if new is None:
                conn.execute("DELETE FROM collection_records WHERE collection = %s AND day = %s"
                             " AND key = %s", (self.name, d, key))
            elif row is not None and current is not None:
                conn.execute("UPDATE collection_records SET record = %s WHERE collection = %s"
                             " AND day = %s AND key = %s", (Jsonb(new.to_json()), self.name, d, key))
            else:
                conn.execute("INSERT INTO collection_records (collection, day, key, record)"
                             " VALUES (%s, %s, %s, %s)", (self.name, d, key, Jsonb(new.to_json())))
            return new

        return self.store.run(apply, "collection")

    def delete(self, key: str, *, day: date | None = None) -> bool:
        return self.store.run(lambda conn: conn.execute(
            "DELETE FROM collection_records WHERE collection = %s AND day = %s AND key = %s",
            (self.name, self._day(day), key)).rowcount > 0, "collection")

    def items(self, *, since: date | None = None, until: date | None = None
              ) -> Iterator[tuple[str, R]]:
        rows = self.store.run(lambda conn: conn.execute(
            "SELECT key, day, record FROM collection_records WHERE collection = %s"
            " AND day >= coalesce(%s::date, '-infinity') AND day <= coalesce(%s::date, 'infinity')"
            " ORDER BY day, position", (self.name, since if self.by_day else None,
                                        until if self.by_day else None)).fetchall(), "collection")
        for key, day, data in rows:
            rec = self._decode(key, day, data)
            if rec is not None:
                yield key, rec

    def days(self) -> list[date]:
        if not self.by_day:
            return []
        rows = self.store.run(lambda conn: conn.execute(
            "SELECT DISTINCT day FROM collection_records WHERE collection = %s ORDER BY day",
            (self.name,)).fetchall(), "collection")
        return [r[0] for r in rows]

    def drop_before(self, day: date) -> int:
        if not self.by_day:
            raise ValueError(f"collection {self.name} is not kept by day")
        return self.store.run(lambda conn: conn.execute(
            "DELETE FROM collection_records WHERE collection = %s AND day < %s",
            (self.name, day)).rowcount, "collection")
