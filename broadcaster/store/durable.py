"""Durable files: whole-file atomic writes, checked JSON reads, preallocated append logs.

- ``atomic_write(path, data)``: temp file, fsync, rename, fsync of the directory;
  a crash leaves the old or the new content, never a torn file, and a write
  that fails (a full disk) leaves neither a temp file nor a changed target.
- ``read_json(path)``: the parsed file, or ``BadRecord`` saying why it is not JSON.
- ``AppendLog``: an append-only file of lines whose space is reserved ahead
  (``posix_fallocate``), so an append does not fail on a full disk; when no
  more space can be reserved the log says so while it still has room for
  the appends already under way.

Files are created mode 0600 and directories 0700 (``make_dirs``, which also
tightens an existing directory that lets others in, or refuses one it cannot
own). ``OSError`` with ENOSPC/EDQUOT becomes ``StoreFull`` naming the
directory; other OSErrors propagate.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from broadcaster.store.base import StoreError, StoreFull
from broadcaster.store.records import BadRecord

log = logging.getLogger(__name__)

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def no_space(exc: OSError, where: Path) -> StoreFull:
    return StoreFull(f"no space left in {where}: {os.strerror(exc.errno or errno.ENOSPC).lower()}"
                     "; free some space, then run again (nothing was half-written)")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new content."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        if exc.errno in NO_SPACE:
            raise no_space(exc, path.parent) from None
        raise
    fsync_dir(path.parent)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def read_json(path: Path) -> Any:
    """The JSON in ``path``; ``BadRecord`` when it is not JSON (FileNotFoundError passes)."""
    return parse_json(path.read_bytes())


def parse_json(raw: bytes) -> Any:
    """The JSON in ``raw``, a file's bytes; ``BadRecord`` when it is not JSON."""
    if not raw.strip():
        raise BadRecord("empty file")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRecord(f"not valid JSON ({exc})") from None


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def make_dirs(*dirs: Path) -> None:
    """Create ``dirs`` (and missing parents) mode 0700; each must end up private.

    An existing directory that lets others in (any group or other bit, e.g.
    0777 or 0755) is tightened to 0700 and a warning is logged. One that is
    shared on purpose (the sticky bit, as /tmp) or owned by another user is
    refused with ``StoreError`` saying what to do: state, queued messages and
    the outbox are never kept where others can read or replace them.
    """
    old = os.umask(0o077)
    try:
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            _private(d)
    finally:
        os.umask(old)


def _private(d: Path) -> None:
    info = d.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    if mode & stat.S_ISVTX or info.st_uid != os.geteuid():
        raise StoreError(f"{d} is shared (mode {mode:04o}, owner uid {info.st_uid}): broadcaster "
                         "keeps its state and outbox in directories of its own, mode 0700; "
                         "choose another (--root, BROADCASTER_STATE_DIR, the file channel's path)")
    try:
        os.chmod(d, 0o700)
    except OSError as exc:
        raise StoreError(f"{d} is mode {mode:04o} and cannot be made private (0700): "
                         f"{exc.strerror}; run: chmod 700 {d}") from None
    log.warning("%s was mode %04o, open to other users: tightened to 0700", d, mode)


class AppendLog:
    """An append-only log of lines in a file whose space is reserved in chunks.

    ``append(line)`` writes the line at the end with one ``pwrite``: once it
    returns the line survives a kill of this process (it is in the page cache);
    the file is fsynced at most every ``sync_every`` seconds and on ``close``.
    The unwritten rest of a reserved chunk reads as NUL bytes, which readers
    ignore (see ``read_lines``). When the next chunk cannot be reserved,
    ``append`` still writes (into the rest of the current chunk) and then
    raises ``StoreFull``, so the caller stops starting new work.
    """

    CHUNK = 4 << 20
    LOW_WATER = 1 << 20          # reserve the next chunk when less than this is left

    def __init__(self, path: Path, *, sync_every: float = 1.0):
        self.path = path
        self.sync_every = sync_every
        self._lock = threading.Lock()
        self._offset = 0
        self._reserved = 0
        self._synced = time.monotonic()
        self._dirty = False
        self.full = False
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise no_space(exc, path.parent) from None
            raise
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # "alive": see abandoned()
            self._reserve()
            fsync_dir(path.parent)
        except BaseException:
            os.close(self._fd)
            _unlink(path)
            raise

    def _reserve(self) -> None:
        try:
            os.posix_fallocate(self._fd, self._reserved, self.CHUNK)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise no_space(exc, self.path.parent) from None
            raise
        self._reserved += self.CHUNK

    @property
    def size(self) -> int:
        return self._offset

    def append(self, line: bytes) -> None:
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"{self.path}: log closed")
            while self._offset + len(line) > self._reserved and not self.full:
                self._grow()
            if self._offset + len(line) > self._reserved:
                raise no_space(OSError(errno.ENOSPC, "full"), self.path.parent)
            os.pwrite(self._fd, line, self._offset)
            self._offset += len(line)
            self._dirty = True
            if self._reserved - self._offset < self.LOW_WATER and not self.full:
                self._grow()
            now = time.monotonic()
            if now - self._synced >= self.sync_every:
                os.fdatasync(self._fd)
                self._synced, self._dirty = now, False
            if self.full:
                raise no_space(OSError(errno.ENOSPC, "full"), self.path.parent)

    def _grow(self) -> None:
        try:
            self._reserve()
        except StoreFull:
            self.full = True

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            try:
                if self._dirty:
                    os.fdatasync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


@contextmanager
def abandoned(path: Path) -> Iterator[bool]:
    """True (holding it) when no live process writes the ``AppendLog`` at ``path``.

    A writer holds an exclusive ``flock`` on its log until it closes it or dies.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[bytes]:
    """The complete lines of an ``AppendLog`` file (a torn last line and the reserved
    NUL tail are left out)."""
    raw = path.read_bytes()
    end = raw.find(b"\0")
    if end >= 0:
        raw = raw[:end]
    lines = raw.split(b"\n")
    return [line for line in lines[:-1] if line]
