"""The durable store: atomic writes, 0600 files, partitioning, crash-safe state documents."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from broadcaster.store import DurableStorage, Store, StoreError, atomic_write


def test_atomic_write_is_0600_and_leaves_no_temp(tmp_path):
    path = tmp_path / "x.json"
    atomic_write(path, b"{}")
    atomic_write(path, b'{"a":1}')
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_state_transaction_writes_once_and_only_on_success(tmp_path):
    store = Store(tmp_path / "var")
    with store.state("demo") as st:
        st["a"] = 1
    assert store.read_state("demo") == {"a": 1}
    with pytest.raises(RuntimeError), store.state("demo") as st:
        st["a"] = 2
        raise RuntimeError("boom")
    assert store.read_state("demo") == {"a": 1}
    with store.state("demo") as st:
        del st["a"]
        st["b"] = 2
    assert store.read_state("demo") == {"b": 2}  # deleted keys stay deleted
    for d in (store.dir, store.state_dir, store.active_dir):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_corrupt_file_is_reported_not_treated_as_empty(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(StoreError, match="corrupt"):
        DurableStorage(path).read()


def test_killed_writer_never_leaves_a_torn_file(tmp_path):
    """SIGKILL a process that rewrites a state file in a loop; the file always loads."""
    store_dir = tmp_path / "var"
    script = textwrap.dedent(f"""
        from broadcaster.store import Store
        s = Store({str(store_dir)!r})
        i = 0
        while True:
            with s.state("hot") as st:
                st["i"] = i
                st["pad"] = "x" * 200_000
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        path = store_dir / "state" / "hot.json"
        for _ in range(200):
            if path.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        subprocess.run(["sleep", "0.3"], check=True)
    finally:
        proc.kill()
        proc.wait()
    data = Store(store_dir).read_state("hot")
    assert data["i"] >= 0 and len(data["pad"]) == 200_000


def test_archive_and_lookup(tmp_path):
    store = Store(tmp_path / "var")
    store.ensure()
    ann_id = "20261122-070000-abcdef"
    atomic_write(store.active_path(ann_id), b"{}")
    assert store.find(ann_id) == store.active_path(ann_id)
    store.archive(ann_id)
    assert store.find(ann_id) == store.archive_path(ann_id)
    assert store.archive_path(ann_id).parent.name == "2026-11"
    assert store.active_ids() == [] and store.archived_ids(["2026-11"]) == [ann_id]
    assert store.find("../../etc/passwd") is None
    assert os.path.exists(store.archive_path(ann_id))
