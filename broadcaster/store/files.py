"""The embedded store: TinyDB files under the state directory, written durably.

Layout (files mode 0600, directories 0700)::

    var/
      active/<id>.json              announcements not finished yet (one TinyDB file each)
      archive/YYYY-MM/<id>.json     finished ones, moved here by one atomic rename
      history/                      the history index of the archive (broadcaster.store.history)
      journal/<session>.jsonl       what a dispatcher recorded and has not folded in yet
      state/<name>.json             small documents (schedule, rate limits, heartbeat…)
      collections/<name>[/<day>].json   keyed records of newer features
      damaged/                      files that failed validation, set aside with the reason
      locks/store.lock              held for the milliseconds a read-modify-write takes
      locks/dispatch.lock           held by whoever sends (run-once, daemon)

TinyDB rewrites a whole file on every write, so the data is partitioned:
queuing an announcement writes one new file and the queue is the listing of
``active/``; no cost grows with history. Whole files are written to a temp
file, fsynced and renamed (``durable.atomic_write``). A dispatcher does not
rewrite files while it sends: it appends each result to its journal
(``broadcaster.store.filedispatch``) and folds the journal into the
announcement files when its pass ends. Readers see journaled results at once:
every read lays the journals over the files. Which journal lines a file
already holds is kept in the file (table ``_journal``), so nothing is applied
twice.

Every file is validated when read (JSON, then the shape of every record). An
announcement or a collection file that fails is moved to ``damaged/`` with a
``.why`` note and a warning in the log; the others go on. A damaged document
is set aside the same way and rebuilt by its owner (``state(rebuild=…)``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from tinydb.storages import Storage

from broadcaster.errors import LockHeld
from broadcaster.store.base import Collection, JournalShelf, R, Store, StoreError, check_name
from broadcaster.store.durable import (
    atomic_write,
    dumps,
    fsync_dir,
    make_dirs,
    parse_json,
    read_json,
    read_lines,
)
from broadcaster.store.records import (
    Announcement,
    AnnouncementMeta,
    BadRecord,
    Damaged,
    Delivery,
    merge,
)

if TYPE_CHECKING:
    from broadcaster.store.history import History
    from broadcaster.tickets.store import TicketStore

log = logging.getLogger("broadcaster.store")

ID_RE = re.compile(r"^(\d{4})(\d{2})\d{2}-\d{6}-[0-9a-f]{6}$")
META_DOC = "1"

# journal entries, by announcement: [(journal name, sequence number, delivery row)]
Entries = dict[str, list[tuple[str, int, Delivery]]]


class DurableStorage(Storage):
    """A TinyDB storage that reads a file once and writes it once, atomically.

    Inside one transaction TinyDB may read and write many times; they all hit
    the in-memory copy, and ``commit()`` writes the file a single time. A file
    that is not a TinyDB document (JSON object of tables) raises ``BadRecord``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._data: dict | None = None
        self._loaded = False
        self.dirty = False

    def read(self) -> dict | None:
        if not self._loaded:
            try:
                data = read_json(self.path)
            except FileNotFoundError:
                data = None
            if data is not None:
                check_tables(data)
            self._data = data
            self._loaded = True
        return self._data

    def write(self, data: dict) -> None:
        self._data = data
        self._loaded = True
        self.dirty = True

    def commit(self) -> None:
        if self.dirty and self._data is not None:
            atomic_write(self.path, dumps(self._data))
            self.dirty = False

    def close(self) -> None:
        pass


def check_tables(data: Any) -> dict:
    """``data`` is a TinyDB document: an object of tables, each an object of objects."""
    if not isinstance(data, dict):
        raise BadRecord(f"expected an object of tables, got {type(data).__name__}")
    for name, table in data.items():
        if not isinstance(table, dict):
            raise BadRecord(f"table {name!r}: expected an object")
        for doc_id, doc in table.items():
            if not isinstance(doc, dict):
                raise BadRecord(f"table {name!r}, document {doc_id}: expected an object")
    return data


# -- announcement files --------------------------------------------------------------

def decode_announcement(data: Any, ann_id: str) -> tuple[Announcement, dict[str, int]]:
    """An announcement file's content and its journal marks; ``BadRecord`` if wrong."""
    check_tables(data)
    meta_doc = data.get("_default", {}).get(META_DOC)
    if meta_doc is None:
        raise BadRecord("no announcement record")
    meta = AnnouncementMeta.from_json(meta_doc)
    if meta.id != ann_id:
        raise BadRecord(f"holds announcement {meta.id!r}, not {ann_id!r}")
    rows = []
    for doc_id, row in data.get("deliveries", {}).items():
        try:
            rows.append(Delivery.from_json(row))
        except BadRecord as exc:
            raise BadRecord(f"delivery {doc_id}: {exc}") from None
    ann = Announcement(meta, rows)
    ann.check()
    marks = data.get("_journal", {}).get(META_DOC, {})
    if not all(isinstance(k, str) and isinstance(v, int) for k, v in marks.items()):
        raise BadRecord("journal marks: expected numbers")
    return ann, dict(marks)


def encode_announcement(ann: Announcement, marks: dict[str, int], *,
                        as_json: tuple[dict, list[dict]] | None = None) -> bytes:
    """The file's bytes; ``as_json``: ``ann``'s meta and rows already as JSON, to reuse."""
    meta, rows = as_json or (ann.meta.to_json(), [d.to_json() for d in ann.deliveries])
    doc: dict[str, Any] = {
        "_default": {META_DOC: meta},
        "deliveries": {str(i): row for i, row in enumerate(rows, 1)},
    }
    if marks:
        doc["_journal"] = {META_DOC: marks}
    return dumps(doc)


def overlay(ann: Announcement, marks: dict[str, int],
            entries: list[tuple[str, int, Delivery]]) -> bool:
    """Apply journal ``entries`` not yet in ``ann`` (by ``marks``); True if any was."""
    applied = False
    for name, seq, row in entries:
        if seq <= marks.get(name, 0):
            continue
        current = ann.delivery(row.group)
        if current is not None:
            ann.replace(merge(current, row))
        marks[name] = seq
        applied = True
    if applied:
        stamps = [r.updated_at for _, _, r in entries if r.updated_at is not None]
        ann.settle(max(stamps) if stamps else datetime.now(ann.meta.created_at.tzinfo))
    return applied


def journal_entries(path: Path) -> list[tuple[str, int, str, Delivery]]:
    """``(journal name, seq, announcement id, row)`` of every readable line of a journal."""
    out = []
    bad = 0
    for line in read_lines(path):
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict) or not isinstance(doc.get("s"), int) \
                    or not isinstance(doc.get("a"), str):
                raise BadRecord("not a journal entry")
            out.append((path.stem, doc["s"], doc["a"], Delivery.from_json(doc.get("d"))))
        except (ValueError, BadRecord):
            bad += 1
    if bad:
        log.warning("%s: %d damaged journal line(s) ignored", path, bad)
    return out


class FileStore(Store):
    """The ``Store`` on TinyDB files under ``state_dir`` (see the module docstring)."""

    def __init__(self, state_dir: Path | str):
        self.dir = Path(state_dir)
        self.location = str(self.dir)
        self.active_dir = self.dir / "active"
        self.archive_dir = self.dir / "archive"
        self.docs_dir = self.dir / "state"
        self.locks_dir = self.dir / "locks"
        self.journal_dir = self.dir / "journal"
        self.damaged_dir = self.dir / "damaged"
        self.collections_dir = self.dir / "collections"
        self._ready = False
        self._store_lock: FileLock | None = None
        self._journal_cache: tuple[tuple, Entries] = ((), {})

    # -- setup and locks ----------------------------------------------------------------
    def ensure(self) -> None:
        if not self._ready:
            make_dirs(self.dir, self.active_dir, self.archive_dir, self.docs_dir, self.locks_dir)
            self._ready = True

    def lock(self) -> FileLock:
        """The store lock: held around every read-modify-write (re-entrant in a thread)."""
        self.ensure()
        if self._store_lock is None:
            self._store_lock = FileLock(self.locks_dir / "store.lock", timeout=60, mode=0o600)
        return self._store_lock

    def transaction(self):
        return self.lock()

    @contextmanager
    def dispatch_lock(self, *, wait: float | None = 0) -> Iterator[None]:
        self.ensure()
        lock = FileLock(self.locks_dir / "dispatch.lock", mode=0o600)
        try:
            lock.acquire(timeout=-1 if wait is None else wait)
        except Timeout:
            raise LockHeld("another broadcaster process is dispatching (dispatch lock held)") from None
        try:
            yield
        finally:
            lock.release()

    # -- paths -------------------------------------------------------------------------
    def active_path(self, ann_id: str) -> Path:
        return self.active_dir / f"{ann_id}.json"

    def archive_path(self, ann_id: str) -> Path:
        m = ID_RE.match(ann_id)
        if not m:
            raise ValueError(ann_id)
        return self.archive_dir / f"{m.group(1)}-{m.group(2)}" / f"{ann_id}.json"

    def find(self, ann_id: str) -> Path | None:
        """Where announcement ``ann_id`` lives now, or None."""
        if not ID_RE.match(ann_id):
            return None
        for path in (self.active_path(ann_id), self.archive_path(ann_id)):
            if path.exists():
                return path
        return None

    def active_ids(self) -> list[str]:
        self.ensure()
        return sorted(p.stem for p in self.active_dir.glob("*.json") if ID_RE.match(p.stem))

    def archived_ids(self, months: list[str] | None = None) -> list[str]:
        """Archived ids, optionally only in the given ``YYYY-MM`` months."""
        self.ensure()
        dirs = ([self.archive_dir / m for m in months] if months is not None
                else sorted(self.archive_dir.iterdir()))
        out: list[str] = []
        for d in dirs:
            if d.is_dir():
                out.extend(p.stem for p in d.glob("*.json") if ID_RE.match(p.stem))
        return sorted(out)

    @staticmethod
    def signature(path: Path) -> tuple:
        """Identity of a file's current content: every write replaces the inode."""
        st = path.stat()
        return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)

    # -- the queue ---------------------------------------------------------------------
    def add_announcement(self, ann: Announcement) -> str:
        self.ensure()
        with self.lock():
            while self.find(ann.meta.id) is not None:   # same second, same 24 random bits
                ann.meta.id = ann.meta.id[:16] + secrets.token_hex(3)
            atomic_write(self.active_path(ann.meta.id), encode_announcement(ann, {}))
        return ann.meta.id

    def announcement(self, ann_id: str) -> Announcement | None:
        path = self.find(ann_id)
        if path is None:
            return None
        entries = self.journal_snapshot()
        loaded = self.read_announcement(path, ann_id)
        if loaded is None:
            return None
        ann, marks = loaded
        overlay(ann, marks, entries.get(ann_id, []))
        return ann

    def active(self) -> list[Announcement]:
        return self._read_many(self.active_ids(), self.active_path)

    def archived(self, since: datetime | None = None) -> list[Announcement]:
        months = None
        if since is not None:
            months, cur = [], since.replace(day=1)
            end = datetime.now(since.tzinfo)
            while (cur.year, cur.month) <= (end.year, end.month):
                months.append(f"{cur:%Y-%m}")
                cur = (cur + timedelta(days=32)).replace(day=1)
        return self._read_many(self.archived_ids(months), self.archive_path)

    def _read_many(self, ids: list[str], where: Callable[[str], Path]) -> list[Announcement]:
        entries = self.journal_snapshot()   # before the files: a fold in between only adds
        out = []
        for ann_id in ids:
            loaded = self.read_announcement(where(ann_id), ann_id)
            if loaded is not None:
                ann, marks = loaded
                overlay(ann, marks, entries.get(ann_id, []))
                out.append(ann)
        return out

    def read_announcement(self, path: Path, ann_id: str
                          ) -> tuple[Announcement, dict[str, int]] | None:
        """The file's announcement and marks; None if it is gone or was damaged (set aside)."""
        try:
            return decode_announcement(read_json(path), ann_id)
        except FileNotFoundError:
            return None     # archived or reactivated meanwhile: the caller looks again if it cares
        except BadRecord as exc:
            self.set_aside(path, f"announcement {ann_id}", str(exc),
                           still_bad=lambda: self._still_bad(path, ann_id))
            return None

    def _still_bad(self, path: Path, ann_id: str) -> bool:
        try:
            decode_announcement(read_json(path), ann_id)
        except FileNotFoundError:
            return False
        except BadRecord:
            return True
        return False

    def change(self, ann_id: str, fn: Callable[[Announcement], list[Delivery]]) -> Announcement:
        with self.lock():
            path = self.find(ann_id)
            loaded = self.read_announcement(path, ann_id) if path is not None else None
            if path is None or loaded is None:
                raise KeyError(ann_id)
            ann, marks = loaded
            overlay(ann, marks, self.journal_snapshot().get(ann_id, []))
            fn(ann)
            self.write_announcement(path, ann, marks)
        return ann

    def write_announcement(self, path: Path, ann: Announcement, marks: dict[str, int]) -> Path:
        """Write ``ann`` where it lives now; move it in or out of the queue as it (un)finishes.
        The caller holds the store lock. Returns the path it lives at afterwards."""
        live = {p.stem for p in self.journal_dir.glob("*.jsonl")} if marks else set()
        marks = {k: v for k, v in marks.items() if k in live}
        as_json = (ann.meta.to_json(), [d.to_json() for d in ann.deliveries])  # encoded once
        atomic_write(path, encode_announcement(ann, marks, as_json=as_json))
        in_queue = path.parent == self.active_dir
        finished = ann.finished
        if in_queue and finished:
            moved = self._move(path, self.archive_path(ann.id))
            self.history.record(*as_json)
            return moved
        if not in_queue and not finished:
            moved = self._move(path, self.active_path(ann.id))
            self.history.forget(ann.id)
            return moved
        return path

    def _move(self, src: Path, dst: Path) -> Path:
        make_dirs(dst.parent)
        os.replace(src, dst)
        fsync_dir(dst.parent)
        fsync_dir(src.parent)
        return dst

    # -- the history index and retention ---------------------------------------------
    @cached_property
    def history(self) -> History:
        from broadcaster.store.history import History  # start-up time: loaded when first used

        return History.in_files(self.dir, load=self.load_archived, listing=self.archived_by_day,
                       lock=self.lock, write=atomic_write)

    def load_archived(self, ann_id: str, *, group: str | None = None, status: str | None = None
                      ) -> tuple[dict, list[dict]] | None:
        """An archived announcement's meta and delivery rows as stored (JSON), or None; with
        ``group`` or ``status`` only those rows (the file is read whole all the same).

        Read without building typed records (the history index reads millions of
        rows); a file that is not an announcement is set aside like any damaged one.
        """
        from broadcaster.store.history import matching  # start-up time: loaded when first used

        path = self.archive_path(ann_id)
        try:
            data = check_tables(read_json(path))
            meta = data["_default"][META_DOC]
            if not isinstance(meta, dict) or meta.get("id") != ann_id:
                raise BadRecord("no announcement record")
        except FileNotFoundError:
            return None
        except (BadRecord, KeyError) as exc:
            self.set_aside(path, f"announcement {ann_id}", str(exc),
                           still_bad=lambda: self._still_bad(path, ann_id))
            return None
        return meta, matching(data.get("deliveries", {}).values(), group, status)

    def archived_by_day(self, months: list[str] | None) -> dict[date, set[str]]:
        """Archived ids of the given ``YYYY-MM`` months (None: all), by the day in the id."""
        from broadcaster.store.history import id_day  # start-up time: loaded when first used

        out: dict[date, set[str]] = {}
        for ann_id in self.archived_ids(months):
            out.setdefault(id_day(ann_id), set()).add(ann_id)
        return out

    def drop_before(self, day: date) -> int:
        self.ensure()
        keep_from = f"{day:%Y-%m}"
        gone = 0
        with self.lock():
            for month in sorted(p for p in self.archive_dir.iterdir() if p.is_dir()):
                if month.name < keep_from:
                    gone += sum(1 for _ in month.glob("*.json"))
                    shutil.rmtree(month)
            self.history.drop_before(day.replace(day=1))
        return gone

    def queue_mark(self) -> object:
        try:
            return self.active_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def nothing_queued(self) -> bool:
        """No file in ``active/`` (an announcement, or a damaged one to set aside) and no
        journal left to fold."""
        for folder in (self.active_dir, self.journal_dir):
            try:
                with os.scandir(folder) as entries:
                    if next(entries, None) is not None:
                        return False
            except FileNotFoundError:
                continue
        return True

    def dispatch(self):
        from broadcaster.store.filedispatch import FileDispatchSession  # start-up time: loaded when first used

        return FileDispatchSession(self)

    # -- journals ----------------------------------------------------------------------
    def journal_paths(self) -> list[Path]:
        try:
            return sorted(self.journal_dir.glob("*.jsonl"))
        except FileNotFoundError:
            return []

    def journal_snapshot(self) -> Entries:
        """Every journal's entries by announcement (cached while the journals are unchanged)."""
        paths = self.journal_paths()
        sig = []
        for p in paths:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            sig.append((p.name, st.st_ino, st.st_mtime_ns))
        key = tuple(sig)
        if key == self._journal_cache[0]:
            return self._journal_cache[1]
        entries: Entries = {}
        for p in paths:
            try:
                lines = journal_entries(p)
            except FileNotFoundError:   # folded meanwhile: the files hold it now
                continue
            for name, seq, ann_id, row in lines:
                entries.setdefault(ann_id, []).append((name, seq, row))
        self._journal_cache = (key, entries)
        return entries

    # -- small documents ---------------------------------------------------------------
    def state_path(self, name: str) -> Path:
        return self.docs_dir / f"{check_name('state', name)}.json"

    @contextmanager
    def state(self, name: str, *, check: Callable[[dict], None] | None = None,
              rebuild: Callable[[], dict] | None = None) -> Iterator[dict[str, Any]]:
        path = self.state_path(name)
        with self.lock():
            data, stored = self._load_doc(path, name, check, rebuild)
            yield data
            out = json.dumps({"state": {META_DOC: data}}, ensure_ascii=False,
                             separators=(",", ":"), default=str).encode()
            if out != stored and (data or stored is not None):   # changed, or rebuilt
                atomic_write(path, out)

    def read_state(self, name: str, *, check: Callable[[dict], None] | None = None,
                   rebuild: Callable[[], dict] | None = None) -> dict[str, Any]:
        return self._load_doc(self.state_path(name), name, check, rebuild)[0]

    def _load_doc(self, path: Path, name: str, check, rebuild
                  ) -> tuple[dict[str, Any], bytes | None]:
        """The document, and the bytes it was read from (what it would be written as if
        left as it was); None when there is no file (none yet, or set aside as damaged)."""
        try:
            raw = path.read_bytes()
            return self._decode_doc(raw, check), raw
        except FileNotFoundError:
            # set aside by an earlier reader and not written since: still to be rebuilt
            return (rebuild() if rebuild is not None and self._was_damaged(path) else {}), None
        except BadRecord as exc:
            self.set_aside(path, f"state {name}", str(exc),
                           still_bad=lambda: self._doc_still_bad(path, check))
            data = rebuild() if rebuild is not None else {}
            log.warning("state %s rebuilt%s", name, " from what the store still knows"
                        if rebuild is not None else " empty")
            return data, None

    @staticmethod
    def _decode_doc(raw: bytes, check) -> dict[str, Any]:
        data = check_tables(parse_json(raw))
        doc = data.get("state", {}).get(META_DOC, {})
        if check is not None:
            check(doc)
        return dict(doc)

    def _doc_still_bad(self, path: Path, check) -> bool:
        try:
            self._decode_doc(path.read_bytes(), check)
        except FileNotFoundError:
            return False
        except BadRecord:
            return True
        return False

    def _was_damaged(self, path: Path) -> bool:
        return any(d.path.startswith(str(self.damaged_dir / path.name)) for d in self.damaged())

    def next_number(self, name: str) -> int:
        with self.state("counters") as st:
            n = int(st.get(name, 0)) + 1
            st[name] = n
        return n

    # -- collections -------------------------------------------------------------------
    def collection(self, name: str, record: type[R], *, by_day: bool = False) -> Collection[R]:
        from broadcaster.store.filecollections import FileCollection  # start-up time: loaded when first used

        return FileCollection(self, check_name("collection", name), record, by_day=by_day)

    # -- tickets and resident messages --------------------------------------------------
    def tickets(self) -> TicketStore:
        from broadcaster.store.filetickets import FileTicketStore  # start-up time: loaded when first used

        return FileTicketStore(self)

    def journal(self) -> JournalShelf:
        from broadcaster.store.filejournal import FileJournal  # start-up time: loaded when first used

        return FileJournal(self.dir)

    # -- damage ------------------------------------------------------------------------
    def set_aside(self, path: Path, name: str, reason: str, *,
                  still_bad: Callable[[], bool] | None = None) -> Path | None:
        """Move a file that failed validation to ``damaged/`` with a ``.why`` note.

        Under the store lock, and only if ``still_bad()`` (the file was not
        replaced by a good one meanwhile). Returns where it went.
        """
        with self.lock():
            if still_bad is not None and not still_bad():
                return None
            make_dirs(self.damaged_dir)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            target = self.damaged_dir / f"{path.name}.{stamp}"
            n = 1
            while target.exists():
                n += 1
                target = self.damaged_dir / f"{path.name}.{stamp}-{n}"
            os.replace(path, target)
            fsync_dir(path.parent)
            note = Damaged(name=name, path=str(target), reason=reason, at=datetime.now(UTC))
            # the file is aside either way; without its note damaged() lists it with no reason
            with contextlib.suppress(OSError, StoreError):
                atomic_write(target.with_name(target.name + ".why"), dumps(note.to_json()))
        log.warning("%s is damaged (%s): set aside as %s; everything else goes on",
                    name, reason, target)
        return target

    def damaged(self) -> list[Damaged]:
        try:
            files = sorted(p for p in self.damaged_dir.iterdir() if not p.name.endswith(".why")
                           and not p.name.startswith("."))
        except FileNotFoundError:
            return []
        out = []
        for p in files:
            note = p.with_name(p.name + ".why")
            try:
                doc = json.loads(note.read_bytes())
                out.append(Damaged(doc["name"], str(p), doc["reason"],
                                   datetime.fromisoformat(doc["at"])))
            except (OSError, ValueError, KeyError, TypeError):
                at = datetime.fromtimestamp(p.stat().st_mtime, UTC)
                out.append(Damaged(p.name, str(p), "unknown (no note)", at))
        return sorted(out, key=lambda d: d.at)
