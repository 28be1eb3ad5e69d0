"""Where all mutable state lives, behind one interface.

- ``base``: the ``Store`` interface (queue, dispatch sessions, documents,
  collections, damage) and its errors ``StoreError`` / ``StoreFull``;
- ``records``: the typed rows (``Announcement``, ``Delivery``, ``Attempt``…);
- ``pgstore``: the PostgreSQL implementation (``pgdispatch``: batched claims
  shared between dispatchers; ``pgschema``: versioned migrations);
- ``files``: the embedded implementation, TinyDB files under the state
  directory (``filedispatch``: its per-send journal; ``filecollections``:
  keyed records by day; ``durable``: atomic writes and preallocated logs).

``open_store(state_dir)`` gives the store an installation uses (PostgreSQL
when ``BROADCASTER_DATABASE_URL`` is set). Importing this
package loads only the interface; an implementation loads when opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from broadcaster.store.base import (
    Claim,
    Collection,
    DispatchSession,
    Record,
    Store,
    StoreError,
    StoreFull,
)
from broadcaster.store.records import BadRecord

DATABASE_ENV = "BROADCASTER_DATABASE_URL"


def open_store(state_dir: Path | str, url: str | None = None) -> Store:
    """The store of an installation: on PostgreSQL at ``url`` (default: the environment's
    ``BROADCASTER_DATABASE_URL``), else the embedded one in ``state_dir``."""
    url = url if url is not None else os.environ.get(DATABASE_ENV, "").strip()
    if url:
        from broadcaster.store.pgstore import PgStore  # start-up time: loaded when first used

        return PgStore(url, state_dir)
    from broadcaster.store.files import FileStore  # start-up time: loaded when first used

    return FileStore(state_dir)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` durably and atomically (see ``durable.atomic_write``)."""
    from broadcaster.store.durable import atomic_write as write  # start-up time: loaded when first used

    write(path, data)


__all__ = ["BadRecord", "Claim", "Collection", "DispatchSession", "Record", "Store",
           "StoreError", "StoreFull", "atomic_write", "open_store"]
