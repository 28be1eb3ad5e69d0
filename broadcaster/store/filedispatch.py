"""A dispatch session on the file store: claim everything due, journal every result.

One dispatcher at a time holds the dispatch lock, so ``claim`` hands it every
due delivery at once. Each ``record`` is one line appended to this session's
journal (``var/journal/<session>.jsonl``, an ``AppendLog``): the result is
safe against a kill -9 as soon as ``record`` returns, whatever the size of
the announcement, and nothing is rewritten while sending. ``close`` folds the
journal into the announcement files (one write each), settles their status,
archives the finished ones and deletes the journal. A journal left by a
killed dispatcher is folded by the next session before it claims anything;
readers lay journals over the files in the meantime (``FileStore``).

A journal line is ``{"s": seq, "a": announcement id, "d": delivery row}``.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from broadcaster.store.base import Claim, DispatchSession, StoreFull
from broadcaster.store.durable import AppendLog, abandoned, dumps, fsync_dir, make_dirs
from broadcaster.store.files import journal_entries, overlay
from broadcaster.store.records import (
    CANCELLED,
    PENDING,
    Announcement,
    AnnouncementMeta,
    Delivery,
    merge,
)

if TYPE_CHECKING:
    from broadcaster.store.files import FileStore

log = logging.getLogger("broadcaster.store")


@dataclass
class _Held:
    """An announcement as this session knows it: on disk (signature) and in memory."""

    ann: Announcement
    marks: dict[str, int]
    path: Path
    signature: tuple | None
    dirty: bool = False
    entries: list[tuple[str, int, Delivery]] = field(default_factory=list)


class FileDispatchSession(DispatchSession):
    def __init__(self, store: FileStore):
        self.store = store
        self.name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
        self._log: AppendLog | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._claimed = False
        self._closed = False
        self._cancelled: set[str] = set()
        self._checked: dict[str, tuple | None] = {}

    # -- claiming ----------------------------------------------------------------------
    def claim(self, now: datetime, *, limit: int | None = None, only: set[str] | None = None,
              accept: Callable[[AnnouncementMeta], bool] | None = None) -> list[Claim]:
        """Everything due at once (``limit`` is ignored)."""
        if self._claimed:
            return []
        self._claimed = True
        self.store.ensure()
        self._fold_leftovers()
        out: list[Claim] = []
        ids = self.store.active_ids()
        for ann_id in ids if only is None else [i for i in ids if i in only]:
            path = self.store.active_path(ann_id)
            held = self._load(path, ann_id)
            if held is None:
                continue
            self._held[ann_id] = held
            if accept is None or accept(held.ann.meta):
                out.extend(Claim(held.ann.meta, d.copy()) for d in _due(held.ann, now))
        if out:
            self._open_log()
        return out

    def _load(self, path: Path, ann_id: str) -> _Held | None:
        try:
            sig = self.store.signature(path)
        except FileNotFoundError:
            return None
        loaded = self.store.read_announcement(path, ann_id)
        if loaded is None:
            return None
        ann, marks = loaded
        return _Held(ann, marks, path, sig)

    def _open_log(self) -> None:
        """Reserve the journal's space now: on a full disk nothing is sent at all."""
        make_dirs(self.store.journal_dir)
        self._log = AppendLog(self.store.journal_dir / f"{self.name}.jsonl")

    # -- recording ---------------------------------------------------------------------
    def record(self, ann_id: str, delivery: Delivery) -> None:
        if self._log is None:
            raise RuntimeError("record() before claim()")
        row = delivery.copy()
        with self._lock:
            if self._closed:    # a send abandoned by a stopping dispatcher: in flight, unrecorded
                raise RuntimeError("record() after close()")
            seq = self._seq + 1
            self._log.append(dumps({"s": seq, "a": ann_id, "d": row.to_json()}) + b"\n")
            self._seq = seq
            held = self._held.get(ann_id)
            if held is not None:
                current = held.ann.delivery(row.group)
                if current is not None:
                    held.ann.replace(merge(current, row))
                held.marks[self.name] = seq
                held.entries.append((self.name, seq, row))
                held.dirty = True
            full = self._log.full
        if full:
            raise StoreFull(f"no space left in {self.store.journal_dir}: stopping before the "
                            "next send (every result so far is recorded)")

    def cancelled(self) -> set[str]:
        """Announcements another process cancelled since the claim (their files changed)."""
        for ann_id, held in list(self._held.items()):
            if ann_id in self._cancelled:
                continue
            path = self.store.find(ann_id)
            try:
                sig = self.store.signature(path) if path is not None else None
            except FileNotFoundError:
                continue
            if path is None or sig == self._checked.get(ann_id, held.signature):
                continue
            self._checked[ann_id] = sig
            loaded = self.store.read_announcement(path, ann_id)
            if loaded is not None and loaded[0].meta.status == CANCELLED:
                with self._lock:
                    held.ann.meta = loaded[0].meta
                    for d in loaded[0].deliveries:
                        if d.status == CANCELLED:
                            current = held.ann.delivery(d.group)
                            if current is not None and current.status == PENDING:
                                held.ann.replace(d)
                self._cancelled.add(ann_id)
        return set(self._cancelled)

    def pending(self) -> list[Claim]:
        with self._lock:
            return [Claim(held.ann.meta, d) for held in self._held.values()
                    for d in held.ann.deliveries if d.status == PENDING]

    # -- folding -----------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:        # a record() still running finishes first; later ones are refused
            if self._closed:
                return
            self._closed = True
        if self._log is None:
            return
        try:
            with self.store.lock():
                for ann_id, held in self._held.items():
                    if held.dirty:
                        self._fold_held(ann_id, held)
            self._delete_journal(self._log.path)
        finally:
            self._log.close()       # releases the journal: folded, or left for the next session

    def _fold_held(self, ann_id: str, held: _Held) -> None:
        path = self.store.find(ann_id)
        if path is None:
            log.warning("announcement %s vanished before its results were folded in", ann_id)
            return
        try:
            same = self.store.signature(path) == held.signature
        except FileNotFoundError:
            same = False
        if same:
            ann, marks = held.ann, held.marks
            ann.settle(_now_like(ann))
        else:   # changed by another process (cancel, retry): apply our entries to its version
            loaded = self.store.read_announcement(path, ann_id)
            if loaded is None:
                return
            ann, marks = loaded
            overlay(ann, marks, held.entries)
            ann.settle(_now_like(ann))
        held.path = self.store.write_announcement(path, ann, marks)
        held.ann, held.marks, held.dirty = ann, marks, False

    def _fold_leftovers(self) -> None:
        """Fold the journals of dispatchers that died (live ones hold a lock on theirs)."""
        for path in self.store.journal_paths():
            with abandoned(path) as dead:
                if dead:
                    self._fold_journal(path)

    def _fold_journal(self, path: Path) -> None:
        entries = journal_entries(path)
        by_ann: dict[str, list[tuple[str, int, Delivery]]] = {}
        for name, seq, ann_id, row in entries:
            by_ann.setdefault(ann_id, []).append((name, seq, row))
        with self.store.lock():
            for ann_id, items in by_ann.items():
                where = self.store.find(ann_id)
                loaded = self.store.read_announcement(where, ann_id) if where else None
                if loaded is None:
                    continue
                ann, marks = loaded
                if overlay(ann, marks, items):
                    self.store.write_announcement(where, ann, marks)
        log.info("folded %d result(s) left by an interrupted dispatcher (%s)",
                 len(entries), path.name)
        self._delete_journal(path)

    def _delete_journal(self, path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        fsync_dir(path.parent)


def _due(ann: Announcement, now: datetime) -> list[Delivery]:
    """The pending deliveries of ``ann`` that a pass at ``now`` must look at."""
    meta = ann.meta
    if meta.status == CANCELLED:
        return []
    expired = now >= meta.expires_at
    if meta.due_at(now) > now and not expired:
        return []
    out = []
    for d in ann.deliveries:
        if d.status != PENDING:
            continue
        if d.updated_at is None:            # untouched: due with its announcement
            due = meta.due_at(now)
        elif d.updated_at > now:            # written while the clock was ahead: re-timed
            due = now
        else:
            due = d.next_attempt_at or meta.scheduled_for
        if expired or due <= now:
            out.append(d)
    return out


def _now_like(ann: Announcement) -> datetime:
    return datetime.now(ann.meta.created_at.tzinfo)

