"""The ticket store: numbering, versions, the archive, files on disk, real concurrent processes."""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from filelock import FileLock

from broadcaster.app import App
from broadcaster.tickets.intake import open_from_message
from broadcaster.tickets.reminders import run as ticket_pass
from broadcaster.tickets.store import StaleTicket
from tests.conftest import REPO, cli
from tests.tickets_helpers import Msg, write_tickets_root

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def troot(root):
    write_tickets_root(root)
    return root


def _open(root, text="楼道垃圾没人清", group="hlz-g01", **kw):
    app = App(root)
    return app.tickets.open(app.groups.by_id[group], text, by="tester", reporter="赵大爷", **kw)[0]


def test_numbers_are_per_prefix_and_day_and_unique_across_years(troot):
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=TZ), tick=False):
        a, b = _open(troot), _open(troot, group="huju-g01")
        c = _open(troot, group="volunteers")           # district:qinhuai
    assert (a.id, b.id, c.id) == ("GL-1123-0001", "GL-1123-0002", "QH-1123-0001")
    with time_machine.travel(datetime(2026, 11, 24, 9, 0, tzinfo=TZ), tick=False):
        assert _open(troot).id == "GL-1124-0001"
    with time_machine.travel(datetime(2027, 11, 23, 9, 0, tzinfo=TZ), tick=False):
        later = _open(troot)
        assert later.id == "GL-1123-0003"               # the sequence never restarts
        old = cli(troot, "tickets", "show", "gl-1123-0001", "--json").json()
    assert old["created_at"].startswith("2026-11-23")


def test_configured_prefix_wins(troot):
    (troot / "tickets.yaml").write_text("prefix: HLZ\n" + (troot / "tickets.yaml").read_text(
        encoding="utf-8"), encoding="utf-8")
    assert _open(troot).id.startswith("HLZ-")


def test_a_change_against_an_old_version_is_refused(troot):
    t = _open(troot)
    app = App(troot)
    app.tickets.change(t.id, "accepted", by="wang-li")
    with pytest.raises(StaleTicket, match="changed since you read it"):
        app.tickets.change(t.id, "assigned", by="zhang-hua", staff="li-qiang",
                           expected_version=t.version)
    r = cli(troot, "tickets", "assign", t.id, "li-qiang", "--if-version", str(t.version))
    assert r.code == 1 and f"ticket {t.id} changed since you read it (version 1, now 2: " \
                           "accepted by wang-li" in r.err
    assert cli(troot, "tickets", "show", t.id, "--json").json()["staff"] == "wang-li"


def test_closed_tickets_leave_for_the_archive_and_come_back_when_reopened(troot):
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=TZ), tick=True):
        t = _open(troot)
        app = App(troot)
        for target in ("accepted", "resolved", "closed"):
            app.tickets.change(t.id, target, by="wang-li", result="已清运")
        assert ticket_pass(App(troot)) == []
    var = troot / "var" / "tickets"
    assert list((var / "open").glob("2026-11-23*.json")) == []
    archived = json.loads((var / "archive" / "2026-11" / "2026-11-23.json").read_text())
    assert archived["tickets"][t.id]["status"] == "closed"
    assert cli(troot, "tickets", "list", "--json").json() == []
    with time_machine.travel(datetime(2026, 11, 30, 9, 0, tzinfo=TZ), tick=True):
        listed = cli(troot, "tickets", "list", "--status", "closed", "--json").json()
        assert [x["id"] for x in listed] == [t.id]
        r = cli(troot, "tickets", "reopen", t.id, "--reason", "垃圾又堆起来了", "--json")
        assert r.code == 0, r.err
        assert r.json()["status"] == "reopened"
        assert r.json()["deadline"] == "2026-12-02T09:00:00+08:00"   # a new clock: 2 workdays
    assert not (var / "archive" / "2026-11" / "2026-11-23.json").exists()
    assert [x["id"] for x in cli(troot, "tickets", "list", "--json").json()] == [t.id]


def test_a_crash_between_the_two_steps_of_a_move_leaves_one_truth(troot):
    t = _open(troot)
    app = App(troot)
    app.tickets.change(t.id, "rejected", by="wang-li", note="重复")
    var = troot / "var" / "tickets"
    shard = next((var / "open").glob("*.json"))
    target = var / "archive" / shard.name[:7] / f"{shard.name[:10]}.json"
    target.parent.mkdir(parents=True)
    row = json.loads(shard.read_text())["tickets"][t.id]
    # the archive copy was written, the open file not rewritten yet: an older copy in the archive
    target.write_text(json.dumps({"tickets": {t.id: {**row, "status": "assigned", "version": 1}}}))
    shown = cli(troot, "tickets", "show", t.id, "--json").json()
    assert shown["status"] == "rejected"                         # the open copy wins
    exported = cli(troot, "tickets", "export", "--json").json()
    assert [(x["id"], x["status"]) for x in exported] == [(t.id, "rejected")]
    assert ticket_pass(App(troot)) == []                         # the pass finishes the move
    assert not shard.exists()
    assert json.loads(target.read_text())["tickets"][t.id]["status"] == "rejected"


def test_opening_is_idempotent_per_message(troot):
    a = _open(troot, source="generic:hlz-g01:m-77")
    b = _open(troot, source="generic:hlz-g01:m-77")
    assert a.id == b.id
    active = list((troot / "var" / "active").glob("*.json"))
    assert len(active) == 2                                     # one ack, one handler notice


def test_a_crash_after_the_number_is_noted_reuses_it(troot, monkeypatch):
    from broadcaster.store.filetickets import FileTicketStore

    real = FileTicketStore._write

    def crash(path, rows):   # the message's number is on disk, the ticket not yet
        raise OSError("killed")

    monkeypatch.setattr(FileTicketStore, "_write", staticmethod(crash))
    with pytest.raises(OSError):
        _open(troot, source="generic:hlz-g01:m-9")
    monkeypatch.setattr(FileTicketStore, "_write", staticmethod(real))
    again = _open(troot, source="generic:hlz-g01:m-9")
    other = _open(troot, source="generic:hlz-g01:m-10")
    assert again.id.endswith("-0001") and other.id.endswith("-0002")
    assert [t["id"] for t in cli(troot, "tickets", "list", "--json").json()] == [again.id, other.id]


def test_many_tickets_of_one_day_are_kept_in_shards(troot):
    from broadcaster.store.filetickets import SHARD

    app = App(troot)
    group = app.groups.by_id["hlz-g01"]
    made = [app.tickets.open(group, f"{i}号楼垃圾没清", by="tester", reporter="赵大爷")[0]
            for i in range(SHARD + 2)]
    shards = sorted(p.name[11:] for p in (troot / "var" / "tickets" / "open").glob("*.json"))
    assert shards == ["000.json", "001.json"]
    last = made[-1]
    app.tickets.change(last.id, "accepted", by="wang-li")
    assert cli(troot, "tickets", "show", last.id, "--json").json()["status"] == "accepted"
    assert len(cli(troot, "tickets", "list", "--json").json()) == SHARD + 2


def test_files_are_private_and_a_damaged_file_is_named(troot):
    _open(troot)
    var = troot / "var" / "tickets"
    for d in (var, var / "open", var / "archive"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    shard = next((var / "open").glob("*.json"))
    assert stat.S_IMODE(shard.stat().st_mode) == 0o600
    (var / "open" / "2026-01-02.json").write_text("{not json")
    r = cli(troot, "tickets", "list")
    assert r.code == 1 and "2026-01-02.json: damaged ticket file" in r.err
    errors = ticket_pass(App(troot))                            # the pass goes on without it
    assert len(errors) == 1 and "2026-01-02.json" in errors[0]
    assert shard.exists()


def _spawn(root, *args):
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_change_one_ticket_one_wins(troot):
    t = _open(troot)
    lock = FileLock(troot / "var" / "locks" / "store.lock")
    with lock:   # both read version 1 and queue up for the lock
        procs = [_spawn(troot, "tickets", "assign", t.id, who, "--if-version", "1", "--by",
                        "zhang-hua") for who in ("li-qiang", "wang-li")]
        time.sleep(1.5)
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert f"ticket {t.id} changed since you read it" in loser
    shown = cli(troot, "tickets", "show", t.id, "--json").json()
    assert shown["version"] == 2 and [h["status"] for h in shown["history"]] == \
        ["open", "assigned", "assigned"]

    with lock:   # without --if-version: one accept wins, the other is refused, never both
        procs = [_spawn(troot, "tickets", "accept", t.id, "--by", "wang-li") for _ in range(2)]
        time.sleep(1.5)
    codes = sorted(p.wait(timeout=60) for p in procs)
    assert codes == [0, 1]
    shown = cli(troot, "tickets", "show", t.id, "--json").json()
    assert [h["status"] for h in shown["history"]].count("accepted") == 1


@pytest.mark.slow
def test_numbers_stay_unique_when_processes_open_at_once(troot):
    def run(i):
        return subprocess.run([sys.executable, str(REPO / "main.py"), "--root", str(troot),
                               "tickets", "open", "--group", "hlz-g01", f"{i}号楼垃圾没清",
                               "--json"], capture_output=True, text=True, timeout=60, check=False)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(run, range(6)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    numbers = sorted(json.loads(r.stdout)["id"].rsplit("-", 1)[1] for r in results)
    assert numbers == [f"{i:04d}" for i in range(1, 7)]


def test_list_filters_and_the_monthly_csv(troot):
    with time_machine.travel(datetime(2026, 11, 23, 9, 0, tzinfo=TZ), tick=False):
        app = App(troot)
        ids = {}
        for mid, group, text, name in (("m1", "hlz-g01", "楼道垃圾没人清", "赵大爷"),
                                       ("m2", "huju-g01", "=1+1 路灯坏了", "钱阿姨"),
                                       ("m3", "volunteers", "电梯坏了", "孙师傅")):
            ids[mid] = open_from_message(app, Msg(text, group_id=group, message_id=mid,
                                                  sender_name=name)).id
        assert cli(troot, "tickets", "accept", ids["m2"], "--by", "li-qiang").code == 0

        def listed(*args):
            r = cli(troot, "tickets", "list", *args, "--json")
            assert r.code == 0, r.err
            return sorted(t["id"] for t in r.json())

        assert listed("--staff", "li-qiang") == [ids["m2"]]
        assert listed("--grid", "community:huilinlvzhou") == [ids["m1"]]
        assert listed("--grid", "volunteers") == [ids["m3"]]
        assert listed("--category", "repair") == sorted([ids["m2"], ids["m3"]])
        assert listed("--status", "accepted") == [ids["m2"]]
        assert listed("--overdue") == []
        r = cli(troot, "tickets", "list", "--status", "acepted")
        assert r.code == 1 and "accepted" in r.err                  # did you mean
    with time_machine.travel(datetime(2026, 12, 1, 9, 0, tzinfo=TZ), tick=False):
        assert len(listed("--overdue")) == 3
        r = cli(troot, "tickets", "export", "--csv")
    assert r.code == 0 and r.out.startswith("\ufeffid,")                 # Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(r.out.lstrip("\ufeff"))))
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == set(ids.values())
    assert by_id[ids["m2"]]["text"] == "'=1+1 路灯坏了"                 # not a formula
    assert by_id[ids["m1"]]["reporter"] == "赵*" and by_id[ids["m1"]]["overdue"] == "yes"
    assert by_id[ids["m2"]]["status"] == "accepted" and by_id[ids["m2"]]["staff"] == "li-qiang"
