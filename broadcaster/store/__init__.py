"""The embedded store: TinyDB files under the state directory, written durably.

Layout (all files mode 0600, directories 0700)::

    var/
      active/<id>.json                 announcements not yet finished (one TinyDB file each)
      archive/YYYY-MM/<id>.json        finished ones, moved here by one atomic rename
      history/                         the history index (see broadcaster.store.history)
      state/<name>.json                small key-value documents (schedules, feeds, heartbeat...)
      locks/store.lock                 held for the milliseconds a read-modify-write takes
      locks/dispatch.lock              held by whoever sends (run-once, daemon)

TinyDB rewrites a whole file on every write, so the data is partitioned: queuing
an announcement writes one new file, recording deliveries rewrites only that
announcement's file, and the queue is the listing of ``active/``. None of these
costs grows with history. Every write goes to a temp file, is fsynced and renamed
over the old one (then the directory is fsynced): a crash leaves either the old
or the new file, never a torn one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from broadcaster.errors import BroadcasterError, LockHeld

ID_RE = re.compile(r"^(\d{4})(\d{2})\d{2}-\d{6}-[0-9a-f]{6}$")
STATE_NAME = re.compile(r"^[a-z0-9_-]+$")


class StoreError(BroadcasterError):
    """A state file that cannot be read (reported with its path)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new content."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class DurableStorage(Storage):
    """A TinyDB storage that reads a file once and writes it once, atomically.

    Inside one transaction TinyDB may read and write many times; they all hit
    the in-memory copy, and ``commit()`` writes the file a single time.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._data: dict | None = None
        self._loaded = False
        self.dirty = False

    def read(self) -> dict | None:
        if not self._loaded:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                raw = b""
            try:
                self._data = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                raise StoreError(f"{self.path}: corrupt state file: {exc}") from None
            self._loaded = True
        return self._data

    def preload(self, data: dict) -> None:
        """Use ``data`` as the file's content (known to match what is on disk)."""
        self._data = data
        self._loaded = True

    def write(self, data: dict) -> None:
        self._data = data
        self._loaded = True
        self.dirty = True

    def commit(self) -> None:
        if self.dirty and self._data is not None:
            body = json.dumps(self._data, ensure_ascii=False, separators=(",", ":"), default=str)
            atomic_write(self.path, body.encode("utf-8"))
            self.dirty = False

    def close(self) -> None:
        pass


class Store:
    """Paths, locks and transactions over the state directory."""

    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir)
        self.active_dir = self.dir / "active"
        self.archive_dir = self.dir / "archive"
        self.state_dir = self.dir / "state"
        self.locks_dir = self.dir / "locks"
        self._ready = False
        self._store_lock: FileLock | None = None

    # -- setup ----------------------------------------------------------------
    def ensure(self) -> None:
        if self._ready:
            return
        old = os.umask(0o077)
        try:
            for d in (self.dir, self.active_dir, self.archive_dir, self.state_dir, self.locks_dir):
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
        finally:
            os.umask(old)
        self._ready = True

    # -- locks ----------------------------------------------------------------
    def lock(self) -> FileLock:
        """The store lock: held around every read-modify-write of a state file."""
        self.ensure()
        if self._store_lock is None:
            self._store_lock = FileLock(self.locks_dir / "store.lock", timeout=60, mode=0o600)
        return self._store_lock

    @contextmanager
    def dispatch_lock(self, *, wait: float | None = 0) -> Iterator[None]:
        """Held by whoever sends. ``wait=0``: fail at once with LockHeld."""
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

    # -- transactions ---------------------------------------------------------
    @contextmanager
    def transaction(self, path: Path) -> Iterator[TinyDB]:
        """Lock, load ``path`` as TinyDB, yield it, write it once if changed."""
        with self.lock(), self.read_only(path) as db:
            yield db
            db.storage.commit()

    @contextmanager
    def read_only(self, path: Path) -> Iterator[TinyDB]:
        self.ensure()
        db = TinyDB(path, storage=DurableStorage)
        try:
            yield db
        finally:
            db.close()

    # -- announcements --------------------------------------------------------
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
        dirs = (
            [self.archive_dir / m for m in months]
            if months is not None
            else sorted(self.archive_dir.iterdir())
        )
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

    def archive(self, ann_id: str) -> None:
        """Move a finished announcement out of the queue (one atomic rename)."""
        src = self.active_path(ann_id)
        dst = self.archive_path(ann_id)
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(src, dst)
        _fsync_dir(dst.parent)
        _fsync_dir(src.parent)

    # -- the history index ------------------------------------------------------------
    @cached_property
    def history(self):
        from broadcaster.store.history import History

        return History(self.dir, load=self.load_archived, listing=self.archived_by_day,
                       lock=self.lock, write=atomic_write)

    def load_archived(self, ann_id: str) -> tuple[dict, list[dict]] | None:
        """An archived announcement's meta and delivery rows as stored, or None."""
        try:
            data = json.loads(self.archive_path(ann_id).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise StoreError(f"{self.archive_path(ann_id)}: corrupt state file: {exc}") from None
        return data["_default"][str(1)], list(data.get("deliveries", {}).values())

    def archived_by_day(self, months: list[str] | None) -> dict[date, set[str]]:
        """Archived ids of the given ``YYYY-MM`` months (None: all), by the day in the id."""
        from broadcaster.store.history import id_day

        out: dict[date, set[str]] = {}
        for ann_id in self.archived_ids(months):
            out.setdefault(id_day(ann_id), set()).add(ann_id)
        return out

    def drop_before(self, day: date) -> int:
        """Retention: delete the archive months that end before ``day``, whole, with their
        history index; returns how many announcements went. The log keeps ``day`` onwards."""
        import shutil

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

    def reactivate(self, ann_id: str) -> None:
        src = self.archive_path(ann_id)
        dst = self.active_path(ann_id)
        os.replace(src, dst)
        _fsync_dir(dst.parent)
        _fsync_dir(src.parent)

    # -- small state documents -------------------------------------------------
    def state_path(self, name: str) -> Path:
        if not STATE_NAME.match(name):
            raise ValueError(f"bad state name {name!r}")
        return self.state_dir / f"{name}.json"

    @contextmanager
    def state(self, name: str) -> Iterator[dict[str, Any]]:
        """A persisted dict, loaded under the store lock and written once on success."""
        with self.transaction(self.state_path(name)) as db:
            table = db.table("state")
            doc = table.get(doc_id=1)
            data: dict[str, Any] = dict(doc) if doc else {}
            before = json.dumps(data, sort_keys=True, default=str)
            yield data
            if json.dumps(data, sort_keys=True, default=str) != before:
                table.truncate()
                table.insert(Document(data, doc_id=1))

    def read_state(self, name: str) -> dict[str, Any]:
        """A snapshot of a state document, without locking (readers only)."""
        path = self.state_path(name)
        if not path.exists():
            return {}
        with self.read_only(path) as db:
            doc = db.table("state").get(doc_id=1)
            return dict(doc) if doc else {}
