"""The resident-message journal on disk: one append-only JSON-lines file per day.

Layout: ``<state>/inbound/YYYY-MM-DD.jsonl`` (the local day), mode 0600 in a
0700 directory. A batch is one ``write`` of its lines and one ``fsync``; a line
torn by a crash or a full disk mid-write is skipped on reading, and ended (a
newline) before anything more is appended, so the next record stays whole. The
records and the promises: ``broadcaster.inbound.journal``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from broadcaster.store.base import JournalShelf
from broadcaster.store.durable import make_dirs

DIRNAME = "inbound"
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")


class FileJournal(JournalShelf):
    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir) / DIRNAME
        self._fd: int | None = None
        self._fd_day: date | None = None

    def day_files(self) -> list[tuple[date, Path]]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.iterdir():
            m = _DAY_FILE.match(p.name)
            if m:
                out.append((date.fromisoformat(m.group(1)), p))
        return sorted(out)

    def write(self, day: date, records: list[dict[str, Any]], unique: list[bool]) -> list[bool]:
        """One write and one fsync for the batch (``unique`` is the caller's to keep: one
        server writes here)."""
        data = b"".join((json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                        for r in records)
        fd = self._file(day)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            self.close()        # reopened next time, the torn tail ended first
            raise
        return [True] * len(records)

    def _file(self, day: date) -> int:
        if self._fd is None or self._fd_day != day:
            self.close()
            make_dirs(self.dir)
            fd = os.open(self.dir / f"{day.isoformat()}.jsonl",
                         os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                end = os.lseek(fd, 0, os.SEEK_END)
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    os.write(fd, b"\n")      # a line torn before: end it, skipped on reading
            except OSError:
                os.close(fd)
                raise
            self._fd, self._fd_day = fd, day
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, first: date | None = None) -> Iterator[dict[str, Any]]:
        for day, path in self.day_files():
            if first is None or day >= first:
                yield from self.read_file(path)

    @staticmethod
    def read_file(path: Path) -> Iterator[dict[str, Any]]:
        """The records of one day file (none if it is gone)."""
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
            return

    def kept(self) -> bool:
        return self.dir.is_dir()

    def purge(self, before: date) -> int:
        n = 0
        for day, path in self.day_files():
            if day < before:
                try:
                    path.unlink()
                    n += 1
                except FileNotFoundError:
                    pass
        return n
