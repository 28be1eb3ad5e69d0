"""Data derived from config files, kept for the next process while they are unchanged.

Deriving it again costs each process: parsing a YAML file, validating thousands of
groups, or, for a cron ``run-once`` with nothing due, the YAML parser, pydantic and
every content kind's module to validate jobs that have not changed. A
``CheckedCache`` file holds such data with the digest of what it came from (the
caller's choice: a file's text, the environment variables it names, the code that
validates it), and gives it back only while that digest matches.

``keep``/``kept``: the same for one named item in the state directory's cache folder
(``run-once``'s valid jobs and time zone), which is made private first or refused
(a shared state directory gets nothing written).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from broadcaster.errors import BroadcasterError
from broadcaster.store.durable import atomic_write, make_dirs

MISS = object()   # what ``CheckedCache.load`` returns when the cache does not match


class CheckedCache:
    """A JSON file of derived data, used only while it matches what it came from.

    The file is a header line ``{"sha256": <digest of the source>, "data_sha256":
    <digest of the data line>}`` and the data as one JSON line. It is used only
    when both digests match: a cache of another source, or one edited by hand,
    is ignored (and rewritten), never trusted. Writing is best effort (0600, in
    the state directory's 0700 cache folder): a cache that cannot be written is
    only slower, never wrong.
    """

    def __init__(self, file: Path, digest: str):
        self.file = file
        self.digest = digest
        self.dir = file.parent

    @classmethod
    def beside(cls, cache_dir: Path, path: Path, digest: str, kind: str = "") -> CheckedCache:
        """The cache of ``path``'s derived data of ``kind`` (the parse: ``""``)."""
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        return cls(cache_dir / f"{path.stem}-{name}{'-' + kind if kind else ''}.json", digest)

    def load(self) -> Any:
        try:
            head, _, body = self.file.read_bytes().partition(b"\n")
            doc = json.loads(head)
            if not (isinstance(doc, dict) and doc.get("sha256") == self.digest
                    and doc.get("data_sha256") == hashlib.sha256(body).hexdigest()):
                return MISS
            return json.loads(body)
        except (OSError, ValueError):
            return MISS

    def store(self, data: Any) -> None:
        if not _json_plain(data):
            return  # dates, non-string keys...: JSON would not give them back as they were
        try:
            make_dirs(self.dir)
            body = json.dumps(data, ensure_ascii=False).encode("utf-8")
            head = json.dumps({"sha256": self.digest,
                               "data_sha256": hashlib.sha256(body).hexdigest()})
            atomic_write(self.file, head.encode() + b"\n" + body)
        except (OSError, BroadcasterError):
            pass  # a cache that cannot be written is only slower, never wrong


def _json_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def kept(cache_dir: Path, name: str, key: str) -> Any:
    """The data kept as ``name`` under ``key`` in ``cache_dir``, or ``MISS``."""
    return CheckedCache(cache_dir / f"{name}.json", key).load()


def keep(cache_dir: Path, name: str, key: str, data: Any) -> None:
    """Keep ``data`` as ``name`` under ``key``; ``cache_dir`` is the state directory's cache
    folder, and the state directory is made private first (best effort, as every cache)."""
    try:
        make_dirs(cache_dir.parent, cache_dir)
    except (OSError, BroadcasterError):
        return     # a shared or foreign state directory: nothing is written there
    CheckedCache(cache_dir / f"{name}.json", key).store(data)


def digest(*parts: object) -> str:
    """A key: the SHA-256 of ``parts`` as JSON (strings, numbers, None, lists)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def file_versions(paths: list[Path]) -> list:
    """Each path with its size and change time (None when missing): in a key, the version
    of the code that derived the data."""
    out = []
    for path in paths:
        try:
            st = path.stat()
            out.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([str(path), None, None])
    return out
