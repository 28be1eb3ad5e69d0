"""What a pass derives from config files, kept for the next process while they are unchanged.

A cron ``run-once`` with nothing due needs only the time zone and the valid jobs;
deriving them again each minute would mean parsing YAML and validating every job
(pydantic and the content kinds). ``load(cache_dir, name, key)`` returns what
``store`` kept under the same ``key``, else None; the caller makes ``key`` a
digest of everything the data depends on (the files' text, the environment
variables they name, the code that validates them).

A kept file is ``<cache_dir>/<name>.json`` (``cache_dir`` is the state directory's
cache folder: both are made private, 0700, or refused; the file is 0600): a header line ``{"key": key, "data_sha256": ...}`` and the
data as one JSON line. A file of another key, damaged or edited by hand is a
miss (and is written again), never trusted; one that cannot be written only
makes the next process slower.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from broadcaster.errors import BroadcasterError
from broadcaster.store.durable import atomic_write, make_dirs


def load(cache_dir: Path, name: str, key: str) -> Any | None:
    """The data kept under ``key`` as ``name``, or None."""
    try:
        head, _, body = (cache_dir / f"{name}.json").read_bytes().partition(b"\n")
        header = json.loads(head)
        if (isinstance(header, dict) and header.get("key") == key
                and header.get("data_sha256") == hashlib.sha256(body).hexdigest()):
            return json.loads(body)
    except (OSError, ValueError):
        pass
    return None


def store(cache_dir: Path, name: str, key: str, data: Any) -> None:
    """Keep ``data`` (JSON) as ``name`` under ``key``, best effort."""
    try:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        header = json.dumps({"key": key, "data_sha256": hashlib.sha256(body).hexdigest()})
        make_dirs(cache_dir.parent, cache_dir)   # the state directory first: never a shared one
        atomic_write(cache_dir / f"{name}.json", header.encode() + b"\n" + body)
    except (OSError, BroadcasterError):
        pass    # kept only to be faster: the next process derives it again


def digest(*parts: object) -> str:
    """A key: the SHA-256 of ``parts`` as JSON (strings, numbers, None, lists)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()
