"""``db import``: copy an embedded store into PostgreSQL, safe to run twice.

What is copied: every announcement, queued or finished, with its deliveries
as they stand (journals of an interrupted dispatcher laid over them); the
state documents (schedule claims, rate limits, heartbeats…); the counters;
the collections. What is already in the database is left as it is: an
announcement whose id is there is skipped, a document or a collection record
already there is kept, a counter keeps the larger value. So a second run
copies nothing, and a run after the embedded store gained announcements
copies just those. The history index of the imported finished announcements
is written as they go in. Announcements are read one at a time and indexed in
batches of about ``BATCH_ROWS`` delivery rows, so 180 days of a district's
history (millions of rows) go through in bounded memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from broadcaster.store.durable import read_json

if TYPE_CHECKING:
    from broadcaster.store.files import FileStore
    from broadcaster.store.pgstore import PgStore
    from broadcaster.store.records import Announcement

BATCH_ROWS = 50_000   # delivery rows of finished announcements indexed per transaction


@dataclass
class Imported:
    announcements: int = 0
    skipped: int = 0
    documents: int = 0
    counters: int = 0
    records: int = 0
    damaged: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"announcements": self.announcements, "skipped": self.skipped,
                "documents": self.documents, "counters": self.counters,
                "collection_records": self.records, "damaged": self.damaged}


def import_store(src: FileStore, dst: PgStore) -> Imported:
    out = Imported()
    have = {r[0] for r in dst.run(lambda conn: conn.execute(
        "SELECT id FROM announcements").fetchall(), "import")}
    finished: list[tuple[dict, list[dict]]] = []
    rows = 0
    for ann in _announcements(src, have, out):
        dst.add_announcement(ann)
        out.announcements += 1
        if ann.finished:
            finished.append((ann.meta.to_json(), [d.to_json() for d in ann.deliveries]))
            rows += len(ann.deliveries)
        if rows >= BATCH_ROWS:
            _index(dst, finished)
            rows = 0
    _index(dst, finished)
    _documents(src, dst, out)
    _collections(src, dst, out)
    out.damaged = [f"{d.name}: {d.reason}" for d in src.damaged()]
    return out


def _announcements(src: FileStore, have: set[str], out: Imported) -> Iterator[Announcement]:
    """The queue's announcements, then the archive's read one at a time, each once (an id
    in ``have`` is counted as skipped; one yielded is added to it)."""
    def fresh(ann: Announcement | None) -> bool:
        if ann is None:              # gone meanwhile, or damaged (set aside, reported)
            return False
        if ann.id in have:
            out.skipped += 1
            return False
        have.add(ann.id)
        return True

    yield from (ann for ann in src.active() if fresh(ann))
    for ann_id in src.archived_ids():
        if ann_id in have:
            out.skipped += 1
        elif fresh(ann := src.announcement(ann_id)):
            yield ann


def _index(dst: PgStore, finished: list[tuple[dict, list[dict]]]) -> None:
    if not finished:
        return

    def index(conn):
        dst.lock_history(conn)
        dst.history.record_many(finished)

    dst.run(index, "import history")
    finished.clear()


def _documents(src: FileStore, dst: PgStore, out: Imported) -> None:
    from psycopg.types.json import Json  # start-up time: loaded when first used

    try:
        paths = sorted(src.docs_dir.glob("*.json"))
    except FileNotFoundError:
        return
    for path in paths:
        name = path.stem
        doc = src.read_state(name)
        if name == "counters":
            for counter, value in doc.items():
                if isinstance(value, int):
                    dst.run(lambda conn, c=counter, v=value: conn.execute(
                        "INSERT INTO counters (name, value) VALUES (%s, %s) ON CONFLICT (name)"
                        " DO UPDATE SET value = greatest(counters.value, excluded.value)", (c, v)))
                    out.counters += 1
            continue
        added = dst.run(lambda conn, n=name, d=doc: conn.execute(
            "INSERT INTO documents (name, doc) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (n, Json(d, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str)))).rowcount,
            "import")
        out.documents += added


def _collections(src: FileStore, dst: PgStore, out: Imported) -> None:
    from psycopg.types.json import Jsonb  # start-up time: loaded when first used

    from broadcaster.store.pgcollections import NO_DAY  # start-up time: loaded when first used

    root = src.collections_dir
    if not root.is_dir():
        return
    files = [(p.stem, NO_DAY, p) for p in root.glob("*.json")]
    for sub in root.iterdir():
        if sub.is_dir():
            for p in sub.glob("*.json"):
                try:
                    files.append((sub.name, date.fromisoformat(p.stem), p))
                except ValueError:
                    continue
    for name, day, path in sorted(files, key=lambda f: (f[0], f[1])):
        try:
            docs = list(read_json(path).get("records", {}).values())
        except (OSError, ValueError, AttributeError):
            out.damaged.append(f"collection {name} ({path.name}): unreadable, not imported")
            continue

        def copy(conn, name=name, day=day, docs=docs):
            n = 0
            for doc in docs:
                if isinstance(doc, dict) and isinstance(doc.get("key"), str):
                    n += conn.execute(
                        "INSERT INTO collection_records (collection, day, key, record)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (name, day, doc["key"], Jsonb(doc.get("record")))).rowcount
            return n

        out.records += dst.run(copy, "import")
