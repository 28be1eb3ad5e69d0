"""Collections on the file store: one TinyDB file per collection, or per day.

``collections/<name>.json``, or ``collections/<name>/<YYYY-MM-DD>.json`` for a
collection kept ``by_day``. Each file is a TinyDB database whose table
``records`` holds ``{"key": …, "record": {…}}`` documents in insertion order.
Every write is a locked read-modify-write of one file (``DurableStorage``:
one atomic write), so a day's partition costs what that day holds, never
what the history holds. A file that fails validation (not JSON, wrong shape,
a record its type rejects) is set aside whole (``FileStore.set_aside``) and
reads as empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

from tinydb import Query, TinyDB

from broadcaster.store.base import Collection, R
from broadcaster.store.durable import make_dirs
from broadcaster.store.files import DurableStorage
from broadcaster.store.records import BadRecord

if TYPE_CHECKING:
    from broadcaster.store.files import FileStore

TABLE = "records"


class FileCollection(Collection[R], Generic[R]):
    def __init__(self, store: FileStore, name: str, record: type[R], *, by_day: bool):
        self.store = store
        self.name = name
        self.record = record
        self.by_day = by_day
        self.dir = store.collections_dir / name if by_day else store.collections_dir

    # -- where ------------------------------------------------------------------------
    def _path(self, day: date | None) -> Path:
        day = self._check_day(day)
        return self.dir / (f"{day.isoformat()}.json" if day else f"{self.name}.json")

    def _what(self, path: Path) -> str:
        return f"collection {self.name}" + (f" ({path.stem})" if self.by_day else "")

    # -- reading one file, validated --------------------------------------------------
    def _docs(self, path: Path) -> list[dict[str, Any]]:
        """The file's documents, each checked; [] when it is missing or was set aside."""
        try:
            docs = self._read(path)
        except BadRecord as exc:
            self.store.set_aside(path, self._what(path), str(exc),
                                 still_bad=lambda: self._bad(path))
            return []
        return docs

    def _read(self, path: Path) -> list[dict[str, Any]]:
        storage = DurableStorage(path)
        data = storage.read()
        if data is None:
            return []
        docs = list(data.get(TABLE, {}).values())
        for doc in docs:
            if not isinstance(doc.get("key"), str):
                raise BadRecord("a record without a key")
            try:
                self.record.from_json(doc.get("record"))
            except BadRecord as exc:
                raise BadRecord(f"record {doc['key'][:40]!r}: {exc}") from None
        return docs

    def _bad(self, path: Path) -> bool:
        try:
            self._read(path)
        except BadRecord:
            return True
        return False

    def _write(self, path: Path, fn: Callable[[Any], Any]) -> Any:
        """``fn(table)`` on the file's ``records`` table under the store lock; one write."""
        with self.store.lock():
            self._docs(path)             # validates (sets a damaged file aside first)
            make_dirs(path.parent)
            db = TinyDB(path, storage=DurableStorage)
            try:
                result = fn(db.table(TABLE, cache_size=0))
                db.storage.commit()
            finally:
                db.close()
        return result

    # -- the interface ----------------------------------------------------------------
    def add(self, key: str, record: R, *, day: date | None = None) -> bool:
        doc = {"key": key, "record": record.to_json()}

        def insert(table) -> bool:
            if table.contains(Query().key == key):
                return False
            table.insert(doc)
            return True

        return self._write(self._path(day), insert)

    def put(self, key: str, record: R, *, day: date | None = None) -> None:
        doc = {"key": key, "record": record.to_json()}
        self._write(self._path(day), lambda table: table.upsert(doc, Query().key == key))

    def get(self, key: str, *, day: date | None = None) -> R | None:
        for doc in self._docs(self._path(day)):
            if doc["key"] == key:
                return self.record.from_json(doc["record"])
        return None

    def update(self, key: str, change: Callable[[R | None], R | None], *,
               day: date | None = None) -> R | None:
        def apply(table) -> R | None:
            found = table.get(Query().key == key)
            current = self.record.from_json(found["record"]) if found else None
            new = change(current)
            if new is None:
                if found:
                    table.remove(doc_ids=[found.doc_id])
            elif found:
                table.update({"record": new.to_json()}, doc_ids=[found.doc_id])
            else:
                table.insert({"key": key, "record": new.to_json()})
            return new

        return self._write(self._path(day), apply)

    def delete(self, key: str, *, day: date | None = None) -> bool:
        return bool(self._write(self._path(day), lambda table: table.remove(Query().key == key)))

    def items(self, *, since: date | None = None, until: date | None = None
              ) -> Iterator[tuple[str, R]]:
        days = [d for d in self.days() if (since is None or d >= since)
                and (until is None or d <= until)] if self.by_day else [None]
        for day in days:
            for doc in self._docs(self._path(day)):
                yield doc["key"], self.record.from_json(doc["record"])

    def days(self) -> list[date]:
        if not self.by_day:
            return []
        try:
            names = [p.stem for p in self.dir.glob("*.json")]
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                out.append(date.fromisoformat(name))
            except ValueError:
                continue
        return sorted(out)

    def drop_before(self, day: date) -> int:
        if not self.by_day:
            raise ValueError(f"collection {self.name} is not kept by day")
        dropped = 0
        with self.store.lock():
            for old in self.days():
                if old >= day:
                    break
                path = self._path(old)
                dropped += len(self._docs(path))
                path.unlink(missing_ok=True)
        return dropped
