"""The resident-message log: appended per day, durable before the answer.

Kept by the store (``Store.journal()``): day files ``<state>/inbound/YYYY-MM-DD.jsonl``
on the embedded store (``broadcaster.store.filejournal``), the table
``inbound_journal`` on PostgreSQL (``broadcaster.store.pgjournal``); the day
is the local day in ``defaults.timezone``. Records:

- ``{"type": "message", "key", "group", "sender_id", "sender_name", "text", …}``
  (see ``InboundMessage.as_json``) and ``{"type": "join", …}``: made durable
  (fsynced, committed) *before* the platform gets its answer, so an
  acknowledged message is never lost;
- ``{"type": "outcome", "key", "entry", "score", "missed", "ticket", "at"}``:
  what was done with it (written after the work; a message without one is
  worked again when the server restarts);
- ``{"type": "miss", "key", "group", "text", "at"}``: an addressed question no
  entry answered (read by ``faq misses``).

``append`` de-duplicates by ``key`` (platforms retry: the same message id is
handled once; on PostgreSQL across servers too) and commits in groups:
concurrent appends share one ``fsync`` or one transaction. Days older than
``defaults.retention`` are deleted by ``purge``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from broadcaster.store.base import Store

log = logging.getLogger(__name__)

DEDUP_DAYS = 2            # a platform retries within minutes; two days of keys are kept in memory


class JournalError(Exception):
    """A record could not be made durable (full disk...): the platform is asked to retry."""


def read(store: Store, since: datetime | None = None, tz: ZoneInfo | None = None) -> Iterator[dict]:
    """Every record from ``since``'s day on (a torn last line is skipped)."""
    first = since.astimezone(tz).date() if since is not None and tz is not None else None
    return store.journal().read(first)


def purge(store: Store, today: date, retention: timedelta) -> int:
    """Delete the days older than ``retention``; returns how many."""
    return store.journal().purge(today - retention)


class Journal:
    """Appends with group commit and de-duplication. One per process (the server's)."""

    def __init__(self, store: Store, tz: ZoneInfo):
        self.store = store
        self.shelf = store.journal()
        self.tz = tz
        self._cond = threading.Condition()
        self._batch: list[tuple[dict, bool, dict]] = []
        self._seen: set[str] = set()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> list[dict]:
        """Open the journal; return the messages and joins of the last days without an outcome."""
        since = datetime.now(self.tz) - timedelta(days=DEDUP_DAYS)
        open_work: dict[str, dict] = {}
        for rec in read(self.store, since, self.tz):
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
        self.shelf.close()

    # -- appending ----------------------------------------------------------------
    def append(self, record: dict, *, dedup: bool = False, durable: bool = True) -> bool:
        """Write ``record``; with ``dedup``, False (and nothing written) if its key was seen
        (here, or by another server on a shared store).

        ``durable``: return only once the record is durable (raises JournalError if it failed).
        """
        waiter: dict = {"done": threading.Event(), "error": None, "written": True}
        with self._cond:
            if dedup:
                key = record["key"]
                if key in self._seen:
                    return False
                self._seen.add(key)
            self._batch.append((record, dedup, waiter))
            self._cond.notify()
        if durable:
            waiter["done"].wait()
            if waiter["error"] is not None:
                if dedup:
                    with self._cond:
                        self._seen.discard(record["key"])
                raise JournalError(waiter["error"])
            return waiter["written"]
        return True

    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._batch and not self._stopping:
                    self._cond.wait()
                batch, self._batch = self._batch, []
                if not batch and self._stopping:
                    return
            error, written = None, [True] * len(batch)
            try:
                written = self.shelf.write(datetime.now(self.tz).date(), [r for r, _, _ in batch],
                                           [u for _, u, _ in batch])
            except OSError as exc:
                error = f"cannot write the inbound journal: {exc.strerror or exc}"
            except Exception as exc:   # StoreError, a database's: the waiters must hear of it
                error = f"cannot write the inbound journal: {exc}"
            if error is not None:
                log.error("%s", error)
            for (_, _, waiter), ok in zip(batch, written, strict=True):
                waiter["error"], waiter["written"] = error, ok
                waiter["done"].set()
