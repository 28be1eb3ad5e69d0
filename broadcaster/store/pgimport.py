"""``db import``: copy an embedded store into PostgreSQL, safe to run twice.

What is copied: every announcement, queued or finished, with its deliveries
as they stand (journals of an interrupted dispatcher laid over them); the
state documents (schedule claims, rate limits, heartbeats…); the counters;
the collections; the tickets with their history, the messages they were
opened from and their numbering (``ticket-seq``, as counters); the
resident-message journal (knowledge-base misses included). What is already
in the database is left as it is: an announcement or a ticket whose id is
there is skipped, a document or a collection record already there is kept,
a counter keeps the larger value, a journal day that holds records is
skipped. So a second run copies nothing, and a run after the embedded store
gained announcements copies just those. The history index of the imported
finished announcements is written as they go in. Announcements are read one
at a time and indexed in batches of about ``BATCH_ROWS`` delivery rows, so
180 days of a district's history (millions of rows) go through in bounded
memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from broadcaster.store.base import StoreError
from broadcaster.store.durable import read_json
from broadcaster.store.filetickets import SEQ_STATE as TICKET_SEQ
from broadcaster.store.pgtickets import SEQ

if TYPE_CHECKING:
    from broadcaster.store.files import FileStore
    from broadcaster.store.pgstore import PgStore
    from broadcaster.store.records import Announcement

BATCH_ROWS = 50_000   # delivery rows of finished announcements indexed per transaction
ONCE = ("message", "join")   # journal records kept once per key (see pgjournal)
BATCH = 1000         # tickets copied per transaction


@dataclass
class Imported:
    announcements: int = 0
    skipped: int = 0
    documents: int = 0
    counters: int = 0
    records: int = 0
    tickets: int = 0
    tickets_skipped: int = 0
    journal: int = 0
    damaged: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"announcements": self.announcements, "skipped": self.skipped,
                "documents": self.documents, "counters": self.counters,
                "collection_records": self.records, "tickets": self.tickets,
                "tickets_skipped": self.tickets_skipped, "journal_records": self.journal,
                "damaged": self.damaged}


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
    _tickets(src, dst, out)
    _journal(src, dst, out)
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
        if name in ("counters", TICKET_SEQ):
            prefix = "" if name == "counters" else SEQ      # ticket numbers: see pgtickets
            for counter, value in doc.items():
                if isinstance(value, int):
                    dst.run(lambda conn, c=prefix + counter, v=value: conn.execute(
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


def _tickets(src: FileStore, dst: PgStore, out: Imported) -> None:
    """Every ticket (the open copy of one reopened from the archive) with its history, and
    the messages they were opened from, in batches of ``BATCH``."""
    from broadcaster.store.pgtickets import insert_many  # start-up time: loaded when first used
    from broadcaster.tickets.model import Ticket  # start-up time: loaded when first used

    tickets = src.tickets()
    if not tickets.kept():
        return
    have = {r[0] for r in dst.run(lambda conn: conn.execute("SELECT id FROM tickets").fetchall(),
                                  "import")}
    rows = list(tickets.every_row())
    todo = [Ticket.from_record(r) for r in rows if r["id"] not in have]   # only those to copy
    out.tickets_skipped = len(rows) - len(todo)

    for i in range(0, len(todo), BATCH):
        out.tickets += dst.run(lambda conn, b=todo[i:i + BATCH]: insert_many(conn, b), "import")
    for path in sorted(tickets.sources_dir.glob("*.json")) if tickets.sources_dir.is_dir() else []:
        try:
            day = date.fromisoformat(path.stem)
            sources = tickets.read_sources(path)
        except (ValueError, StoreError) as exc:
            out.damaged.append(f"ticket sources {path.name}: {exc}, not imported")
            continue
        dst.run(lambda conn, d=day, s=sources: _sources(conn, d, s), "import")


def _sources(conn, day: date, sources: dict[str, str]) -> None:
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO ticket_sources (day, source, ticket) VALUES (%s, %s, %s)"
                        " ON CONFLICT DO NOTHING", [(day, k, v) for k, v in sources.items()])


def _journal(src: FileStore, dst: PgStore, out: Imported) -> None:
    """The resident-message journal, day by day; a day already in the database is skipped."""
    shelf = src.journal()
    have = {r[0] for r in dst.run(lambda conn: conn.execute(
        "SELECT DISTINCT day FROM inbound_journal").fetchall(), "import")}
    for day, path in shelf.day_files():
        if day in have:
            continue
        records = list(shelf.read_file(path))
        if not records:
            continue
        dst.journal().write(day, records, [r.get("type") in ONCE for r in records])
        out.journal += len(records)
