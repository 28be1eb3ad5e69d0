"""The durable store: atomic writes, 0600 files, partitioning, crash-safe state documents."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap

import pytest

from broadcaster.store import BadRecord, atomic_write
from broadcaster.store.files import DurableStorage, FileStore


def test_atomic_write_is_0600_and_leaves_no_temp(tmp_path):
    path = tmp_path / "x.json"
    atomic_write(path, b"{}")
    atomic_write(path, b'{"a":1}')
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_state_documents_live_in_0700_directories(tmp_path):
    """(What a document holds through a transaction: the contract suite, test_store_contract.)"""
    store = FileStore(tmp_path / "var")
    with store.state("demo") as st:
        st["a"] = 1
    assert stat.S_IMODE(store.state_path("demo").stat().st_mode) == 0o600
    for d in (store.dir, store.docs_dir, store.active_dir):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_a_state_document_is_written_only_when_it_changed(tmp_path):
    store = FileStore(tmp_path / "var")
    path = store.state_path("demo")
    with store.state("demo") as st:
        assert st == {}                 # read, left empty: no file made
    assert not path.exists()
    with store.state("demo") as st:
        st.update({"keys": {"b": [1.5, 2], "a": "好"}})
    written = path.stat()
    with store.state("demo") as st:     # read and left as it was: not written again
        st["keys"] = dict(st["keys"])
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (written.st_ino,
                                                             written.st_mtime_ns)
    with store.state("demo") as st:
        st["keys"]["b"].append(3)       # a change deep inside is a change
    assert store.read_state("demo") == {"keys": {"b": [1.5, 2, 3], "a": "好"}}
    with store.state("demo") as st:
        st.clear()
    assert store.read_state("demo") == {} and path.exists()


def test_corrupt_file_is_reported_not_treated_as_empty(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(BadRecord, match="not valid JSON"):
        DurableStorage(path).read()


def test_killed_writer_never_leaves_a_torn_file(tmp_path):
    """SIGKILL a process that rewrites a state file in a loop; the file always loads."""
    store_dir = tmp_path / "var"
    script = textwrap.dedent(f"""
        from broadcaster.store import open_store
        s = open_store({str(store_dir)!r})
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
    data = FileStore(store_dir).read_state("hot")
    assert data["i"] >= 0 and len(data["pad"]) == 200_000


def _announcement(ann_id="20261122-070000-abcdef", groups=("a", "b")):
    from datetime import datetime, timedelta, timezone

    from broadcaster.store.records import Announcement, AnnouncementMeta, Delivery

    now = datetime(2026, 11, 22, 7, 0, tzinfo=timezone(timedelta(hours=8)))
    meta = AnnouncementMeta(id=ann_id, created_at=now, scheduled_for=now,
                            expires_at=now + timedelta(hours=24), status="queued", source="test",
                            title="通知", bodies={"b1": "停水通知"}, updated_at=now)
    return Announcement(meta, [Delivery(group=g, body="b1", next_attempt_at=now) for g in groups])


def test_finished_announcements_move_to_the_archive_and_back(tmp_path):
    store = FileStore(tmp_path / "var")
    ann_id = store.add_announcement(_announcement())
    assert store.find(ann_id) == store.active_path(ann_id)
    assert [a.id for a in store.active()] == [ann_id]

    def finish(ann):
        for d in ann.deliveries:
            d.status = "sent"
        ann.settle(ann.meta.created_at)
        return ann.deliveries

    assert store.change(ann_id, finish).status == "done"
    assert store.find(ann_id) == store.archive_path(ann_id)
    assert store.archive_path(ann_id).parent.name == "2026-11"
    assert store.active() == [] and [a.id for a in store.archived()] == [ann_id]
    assert store.announcement("../../etc/passwd") is None

    def reopen(ann):
        ann.deliveries[0].status = "pending"
        ann.meta.status = "sending"
        return ann.deliveries[:1]

    store.change(ann_id, reopen)
    assert store.find(ann_id) == store.active_path(ann_id)
    assert stat.S_IMODE(store.active_path(ann_id).stat().st_mode) == 0o600


def test_a_taken_id_is_never_overwritten(tmp_path):
    store = FileStore(tmp_path / "var")
    first = store.add_announcement(_announcement())
    second = store.add_announcement(_announcement())
    assert first != second and first[:16] == second[:16]
    assert len(store.active()) == 2


# -- the per-send journal ------------------------------------------------------------

def test_a_recorded_send_is_visible_at_once_and_folded_at_close(tmp_path):
    from datetime import timedelta

    store = FileStore(tmp_path / "var")
    ann_id = store.add_announcement(_announcement(groups=("a", "b", "c")))
    session = store.dispatch()
    claims = session.claim(_announcement().meta.created_at + timedelta(minutes=1))
    assert sorted(c.delivery.group for c in claims) == ["a", "b", "c"]
    a = claims[0].delivery
    a.status, a.updated_at = "sent", claims[0].meta.created_at
    session.record(ann_id, a)
    # another process sees it before the pass ends: the journal is laid over the file
    seen = FileStore(tmp_path / "var").announcement(ann_id)
    assert seen.delivery(a.group).status == "sent" and seen.status == "sending"
    assert json.loads(store.active_path(ann_id).read_text())["deliveries"]["1"]["status"] == "pending"
    session.close()
    assert store.journal_paths() == []
    on_disk = json.loads(store.active_path(ann_id).read_text())
    assert on_disk["deliveries"]["1"]["status"] == "sent"
    assert len(session.pending()) == 2


def test_a_journal_left_by_a_killed_dispatcher_is_folded_by_the_next(tmp_path):
    from datetime import timedelta

    store = FileStore(tmp_path / "var")
    ann_id = store.add_announcement(_announcement(groups=("a", "b")))
    later = _announcement().meta.created_at + timedelta(minutes=1)
    dead = store.dispatch()
    for claim in dead.claim(later):
        claim.delivery.status, claim.delivery.updated_at = "sent", later
        dead.record(ann_id, claim.delivery)
    dead._log.close()                      # the process died here: no close()
    assert len(store.journal_paths()) == 1
    nxt = store.dispatch()
    assert nxt.claim(later) == []          # folded first: nothing left to send
    nxt.close()
    assert store.journal_paths() == []
    assert store.find(ann_id) == store.archive_path(ann_id)
    assert store.announcement(ann_id).status == "done"


# -- collections ---------------------------------------------------------------------

class Note:
    """A toy record type, as a feature module would declare one."""

    def __init__(self, text: str, count: int = 1):
        self.text, self.count = text, count

    def to_json(self):
        return {"text": self.text, "count": self.count}

    @classmethod
    def from_json(cls, data):
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise BadRecord("text: missing")
        return cls(data["text"], int(data.get("count", 1)))


def test_a_collection_by_day_keeps_keys_once_per_day_and_drops_old_days(tmp_path):
    from datetime import date

    store = FileStore(tmp_path / "var")
    notes = store.collection("misses", Note, by_day=True)
    d1, d2 = date(2026, 11, 21), date(2026, 11, 22)
    assert notes.add("m1", Note("巨住证怎么办"), day=d1)
    assert not notes.add("m1", Note("again"), day=d1)      # a platform retry: handled once
    assert notes.add("m1", Note("next day"), day=d2)
    notes.update("m1", lambda n: Note(n.text, n.count + 1), day=d1)
    assert notes.get("m1", day=d1).count == 2
    assert [(k, n.text) for k, n in notes.items(since=d2)] == [("m1", "next day")]
    assert notes.days() == [d1, d2]
    assert notes.drop_before(d2) == 1 and notes.days() == [d2]
    with pytest.raises(ValueError, match="kept by day"):
        notes.get("m1")
    path = store.collections_dir / "misses" / "2026-11-22.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_collection_file_of_the_wrong_shape_is_set_aside(tmp_path):
    store = FileStore(tmp_path / "var")
    tickets = store.collection("tickets", Note)
    tickets.put("GL-1", Note("垃圾未清运"))
    tickets.put("GL-2", Note("路灯不亮"))
    assert [k for k, _ in tickets.items()] == ["GL-1", "GL-2"]
    assert tickets.delete("GL-2") and tickets.get("GL-2") is None
    path = store.collections_dir / "tickets.json"
    data = json.loads(path.read_text())
    data["records"]["1"]["record"] = {"text": 42}
    path.write_text(json.dumps(data))
    assert list(tickets.items()) == []
    [damaged] = store.damaged()
    assert damaged.name == "collection tickets" and "text" in damaged.reason
    assert store.next_number("tickets") == 1 and store.next_number("tickets") == 2
