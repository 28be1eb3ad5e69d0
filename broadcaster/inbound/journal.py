"""The resident-message log: one append-only JSON-lines file per day, durable before the answer.

Layout: ``<state>/inbound/YYYY-MM-DD.jsonl`` (the day in ``defaults.timezone``),
mode 0600 in a 0700 directory. Records:

- ``{"type": "message", "key", "group", "sender_id", "sender_name", "text", …}``
  (see ``InboundMessage.as_json``) and ``{"type": "join", …}``: written and
  fsynced *before* the platform gets its answer, so an acknowledged message is
  never lost;
- ``{"type": "outcome", "key", "entry", "score", "missed", "ticket", "at"}``:
  what was done with it (written after the work; a message without one is
  worked again when the server restarts);
- ``{"type": "miss", "key", "group", "text", "at"}``: an addressed question no
  entry answered (read by ``faq misses``).

``append`` de-duplicates by ``key`` (platforms retry: the same message id is
handled once) and commits in groups: concurrent appends share one ``fsync``.
Files older than ``defaults.retention`` are deleted by ``purge``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from broadcaster.store.durable import make_dirs

log = logging.getLogger(__name__)

DIRNAME = "inbound"
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
DEDUP_DAYS = 2            # a platform retries within minutes; two days of keys are kept in memory


class JournalError(Exception):
    """A record could not be made durable (full disk...): the platform is asked to retry."""


def directory(state_dir: Path) -> Path:
    return Path(state_dir) / DIRNAME


def day_files(state_dir: Path) -> list[tuple[date, Path]]:
    d = directory(state_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _DAY_FILE.match(p.name)
        if m:
            out.append((date.fromisoformat(m.group(1)), p))
    return sorted(out)


def read(state_dir: Path, since: datetime | None = None, tz: ZoneInfo | None = None) -> Iterator[dict]:
    """Every record of the day files from ``since``'s day on (a torn last line is skipped)."""
    first = since.astimezone(tz).date() if since is not None and tz is not None else None
    for day, path in day_files(state_dir):
        if first is not None and day < first:
            continue
        try:
            with path.open("rb") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # a line torn by a crash mid-write
                    if isinstance(rec, dict):
                        yield rec
        except FileNotFoundError:
            continue


def purge(state_dir: Path, today: date, retention: timedelta) -> int:
    """Delete day files older than ``retention``; returns how many."""
    cutoff = today - retention
    n = 0
    for day, path in day_files(state_dir):
        if day < cutoff:
            try:
                path.unlink()
                n += 1
            except FileNotFoundError:
                pass
    return n


class Journal:
    """Appends with group commit and de-duplication. One per process (the server's)."""

    def __init__(self, state_dir: Path, tz: ZoneInfo):
        self.dir = directory(state_dir)
        self.tz = tz
        self._cond = threading.Condition()
        self._batch: list[tuple[bytes, dict]] = []
        self._seen: set[str] = set()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._fd: int | None = None
        self._fd_day: date | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> list[dict]:
        """Open the journal; return the messages and joins of the last days without an outcome."""
        make_dirs(self.dir)
        since = datetime.now(self.tz) - timedelta(days=DEDUP_DAYS)
        open_work: dict[str, dict] = {}
        for rec in read(self.dir.parent, since, self.tz):
            key = rec.get("key")
            if not isinstance(key, str):
                continue
            if rec.get("type") in ("message", "join"):
                self._seen.add(key)
                open_work[key] = rec
            elif rec.get("type") == "outcome":
                open_work.pop(key, None)
        self._thread = threading.Thread(target=self._writer, name="journal", daemon=True)
        self._thread.start()
        return list(open_work.values())

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- appending ----------------------------------------------------------------
    def append(self, record: dict, *, dedup: bool = False, durable: bool = True) -> bool:
        """Write ``record``; with ``dedup``, False (and nothing written) if its key was seen.

        ``durable``: return only once the record is fsynced (raises JournalError if it failed).
        """
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        waiter: dict = {"done": threading.Event(), "error": None}
        with self._cond:
            if dedup:
                key = record["key"]
                if key in self._seen:
                    return False
                self._seen.add(key)
            self._batch.append((line, waiter))
            self._cond.notify()
        if durable:
            waiter["done"].wait()
            if waiter["error"] is not None:
                if dedup:
                    with self._cond:
                        self._seen.discard(record["key"])
                raise JournalError(waiter["error"])
        return True

    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._batch and not self._stopping:
                    self._cond.wait()
                batch, self._batch = self._batch, []
                if not batch and self._stopping:
                    return
            error = None
            try:
                fd = self._file()
                data = b"".join(line for line, _ in batch)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError as exc:
                error = f"cannot write the inbound journal: {exc.strerror or exc}"
                log.error("%s", error)
            for _, waiter in batch:
                waiter["error"] = error
                waiter["done"].set()

    def _file(self) -> int:
        today = datetime.now(self.tz).date()
        if self._fd is None or self._fd_day != today:
            if self._fd is not None:
                os.close(self._fd)
            path = self.dir / f"{today.isoformat()}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._fd_day = today
        return self._fd
