"""Where all mutable state lives, behind one interface.

- ``base``: the ``Store`` interface (queue, dispatch sessions, documents,
  collections, damage) and its errors ``StoreError`` / ``StoreFull``;
- ``records``: the typed rows (``Announcement``, ``Delivery``, ``Attempt``…);
- ``files``: the embedded implementation, TinyDB files under the state
  directory (``filedispatch``: its per-send journal; ``filecollections``:
  keyed records by day; ``durable``: atomic writes and preallocated logs).

``open_store(state_dir)`` gives the store an installation uses. Importing this
package loads only the interface; an implementation loads when opened.
"""

from __future__ import annotations

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


def open_store(state_dir: Path | str) -> Store:
    """The embedded store in ``state_dir`` (created on first write)."""
    from broadcaster.store.files import FileStore

    return FileStore(state_dir)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` durably and atomically (see ``durable.atomic_write``)."""
    from broadcaster.store.durable import atomic_write as write

    write(path, data)


__all__ = ["BadRecord", "Claim", "Collection", "DispatchSession", "Record", "Store",
           "StoreError", "StoreFull", "atomic_write", "open_store"]
