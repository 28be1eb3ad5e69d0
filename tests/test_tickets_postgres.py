"""Tickets and the resident-message journal on PostgreSQL: the same commands answer the same
JSON as on the embedded store; two staff changing one ticket (threads racing on one read,
real processes): exactly one wins; ``db import`` of tickets and the journal, twice; one
message journaled once across two servers, and nothing acknowledged lost to a kill -9."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest
import time_machine

from broadcaster.inbound import journal
from broadcaster.store import open_store
from tests.conftest import REPO, cli, cli_process
from tests.test_store_contract import opened
from tests.test_store_postgres import masked
from tests.tickets_helpers import write_tickets_root

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)
TIMED = re.compile(r'"request_ms": \{[^}]*\}')     # how long the file channel took


@pytest.fixture
def troot(root):
    write_tickets_root(root)
    return root


def ticket_session(root, env) -> dict:
    """Open, list, change (one change refused as stale), close, export, a pass, stats: the JSON
    of each, ids and times masked; a day later the list again (now overdue)."""
    out = {}
    steps = [
        ("open", ("tickets", "open", "楼道垃圾三天没清", "--group", "hlz-g01", "--reporter", "赵大爷",
                  "--by", "zhang-hua", "--json")),
        ("open2", ("tickets", "open", "路灯坏了", "--group", "huju-g01", "--by", "zhang-hua", "--json")),
        ("open3", ("tickets", "open", "消防通道被占", "--group", "volunteers", "--by", "zhang-hua",
                   "--json")),
        ("list", ("tickets", "list", "--json")),
        ("accept", ("tickets", "accept", "GL-1123-0001", "--by", "wang-li", "--if-version", "1",
                    "--json")),
        ("stale", ("tickets", "assign", "GL-1123-0001", "li-qiang", "--if-version", "1", "--json")),
        ("resolve", ("tickets", "resolve", "GL-1123-0001", "--result", "已清运", "--by", "wang-li",
                     "--json")),
        ("close", ("tickets", "close", "GL-1123-0001", "--by", "zhang-hua", "--json")),
        ("reject", ("tickets", "reject", "QH-1123-0001", "--reason", "重复", "--by", "zhang-hua",
                    "--json")),
        ("run", ("run-once", "--json")),
        ("closed", ("tickets", "list", "--status", "closed", "--json")),
        ("show", ("tickets", "show", "gl-1123-0001", "--json")),
        ("staff", ("tickets", "list", "--staff", "li-qiang", "--json")),
        ("grid", ("tickets", "list", "--grid", "community:huju", "--category", "repair", "--json")),
        ("export", ("tickets", "export", "--json")),
        ("missing", ("tickets", "show", "GL-1123-0009", "--json")),
    ]
    with time_machine.travel(MONDAY, tick=False):
        for name, args in steps:
            res = cli(root, *args, env=env)
            out[name] = (res.code, masked(res.json()))
    with time_machine.travel(MONDAY + timedelta(days=5), tick=False):
        for name, args in (("overdue", ("tickets", "list", "--overdue", "--json")),
                           ("run2", ("run-once", "--json")), ("stats", ("stats", "--json"))):
            res = cli(root, *args, env=env)
            shown = masked(res.json())
            out[name] = (res.code, TIMED.sub("<ms>", shown) if isinstance(shown, str) else shown)
        res = cli(root, "stats", env=env)                   # as text: the same tables
        out["stats_text"] = (res.code, re.sub(r"(platform answer median / p95 \(ms\)).*", r"\1",
                                              res.out))
    return out


def test_the_ticket_commands_answer_the_same_on_postgres(troot, tmp_path, pg_url):
    other = tmp_path / "other-root"
    shutil.copytree(troot, other)
    on_files = ticket_session(other, {"BROADCASTER_DATABASE_URL": ""})
    on_pg = ticket_session(troot, {"BROADCASTER_DATABASE_URL": pg_url})
    for name in on_files:
        assert on_pg[name] == on_files[name], "\n".join(__import__("difflib").unified_diff(
            on_files[name][1].splitlines(), on_pg[name][1].splitlines(), lineterm=""))
    assert on_pg["stale"][0] == 1 and "changed since you read it" in on_pg["stale"][1]
    assert on_pg["missing"][0] == 1
    assert on_pg["reject"][0] == 0
    assert re.search(r"tickets resolved +1\n", on_pg["stats_text"][1])
    assert re.search(r"hlz-g01 +1 +1 +0 ", on_pg["stats_text"][1]), on_pg["stats_text"][1]
    assert [json.loads(t)["id"] for t in on_pg["overdue"][1]] == ["GL-1123-0002"]   # the light
    assert not (troot / "var" / "tickets").exists()             # nothing of them under var/


def test_a_ticket_whose_commit_answer_was_lost_is_opened_and_changed_once(pg_server, pg_url,
                                                                         tmp_path):
    """The server committed a new ticket and the connection died before the answer came back
    (a proxy drops the COMMIT's answer and closes the connection): the store's retry returns
    the ticket that try made, as new, instead of numbering a second one; a change whose
    answer was lost is not refused as stale on the retry, nor applied twice."""
    from tests.pgproxy import CommitCutter

    cutter = CommitCutter(pg_server)
    store = open_store(tmp_path / "var", url=cutter.url(urlsplit(pg_url).path.lstrip("/")))
    try:
        tickets = store.tickets()
        first, _ = opened(tickets)                      # connected, the schema checked
        made = []
        for source in (None, "generic:chat:m1"):
            cutter.cut_next_commit()
            t, new = opened(tickets, source=source)
            assert cutter.cut.is_set(), "the answer to the COMMIT was dropped"
            assert new
            made.append(t.id)
        assert made == ["GL-1122-0002", "GL-1122-0003"]
        assert sorted(r["id"] for r in tickets.open_rows()) == [first.id, *made]
        assert opened(tickets, source="generic:chat:m1") == (tickets.get(made[1]), False)
        assert opened(tickets)[0].id == "GL-1122-0004"

        def accept(x):
            x.add(datetime(2026, 11, 22, 8, 0, tzinfo=TZ), "wang-li", "accepted")

        cutter.cut_next_commit(after=b"UPDATE tickets")   # a person's change: not "stale"
        done = tickets.change(first.id, accept, expected_version=1)
        assert cutter.cut.is_set() and done.version == 2
        cutter.cut_next_commit(after=b"UPDATE tickets")   # bookkeeping: applied once
        tickets.change(first.id, lambda x: x.notices.append({"key": "k"}), bump=False)
        assert cutter.cut.is_set()
        got = tickets.get(first.id)
        assert got.notices == [{"key": "k"}] and got.version == 2
        assert [c.status for c in got.history] == ["open", "accepted"]
    finally:
        store.close()
        cutter.close()


def test_a_damaged_ticket_row_is_set_aside_and_named_and_the_rest_reads_on(troot, pg_url, caplog):
    """A row whose record no longer reads as a ticket (edited by hand, or by a bug): the read
    that meets it moves it, with its history, to the table ``damaged`` and goes on;
    ``status`` and ``check`` name it, ``tickets show`` says where it went, the pass names one
    it meets; the others list, change and count as before."""
    env = {"BROADCASTER_DATABASE_URL": pg_url}
    with time_machine.travel(MONDAY, tick=False):
        made = [cli(troot, "tickets", "open", text, "--group", "hlz-g01", "--json", env=env).json()["id"]
                for text in ("楼道垃圾三天没清", "路灯坏了", "消防通道被占", "垃圾桶满了")]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE tickets SET record = record - 'created_at' WHERE id = %s", (made[0],))
        conn.execute("UPDATE ticket_history SET change = '{\"at\": \"yesterday\"}' WHERE ticket = %s",
                     (made[1],))
    with time_machine.travel(MONDAY + timedelta(hours=1), tick=False):
        listed = cli(troot, "tickets", "list", "--json", env=env)
        assert listed.code == 0, listed.err
        assert sorted(t["id"] for t in listed.json()) == made[2:]
        assert "ticket GL-1123-0001 is damaged" in caplog.text
        shown = cli(troot, "tickets", "show", made[0], "--json", env=env)
        assert shown.code == 1 and "is damaged and was set aside as" in shown.json()["error"]["message"]
        assert "KeyError: 'created_at'" in shown.json()["error"]["message"]
        status = cli(troot, "status", "--json", env=env).json()["damaged"]
        assert [d["name"] for d in status] == [f"ticket {made[0]}", f"ticket {made[1]}"]
        assert "table tickets (damaged #" in status[0]["path"]
        check = cli(troot, "check", "--json", env=env).out
        assert f"ticket {made[1]} was damaged" in check
        with psycopg.connect(pg_url, autocommit=True) as conn:
            kept = conn.execute("SELECT data FROM damaged ORDER BY id").fetchall()
            assert [k[0]["id"] for k in kept] == made[:2] and len(kept[1][0]["history"]) == 2
            conn.execute("UPDATE tickets SET record = jsonb_set(record, '{urgent}', '\"maybe\"')"
                         " || '{\"clock_from\": 7}' WHERE id = %s", (made[3],))
        ran = cli(troot, "run-once", "--json", env=env)
        assert ran.code == 1 and f"ticket {made[3]} is damaged" in ran.out    # named once
        assert cli(troot, "run-once", "--json", env=env).code == 0
        assert cli(troot, "tickets", "accept", made[2], "--by", "wang-li", "--json", env=env).code == 0
        assert cli(troot, "stats", "--json", env=env).json()["tickets"]["opened"] == 1
        again = cli(troot, "tickets", "open", "路灯又坏了", "--group", "hlz-g01", "--json", env=env)
        assert again.json()["id"] == "GL-1123-0005"         # numbers of damaged ones not reused
    store = open_store(troot / "var", url=pg_url)
    try:
        tickets = store.tickets()
        first, _ = opened(tickets, source="generic:chat:m7")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE tickets SET record = '[]' WHERE id = %s", (first.id,))
        again, new = opened(tickets, source="generic:chat:m7")     # the platform retried
        assert new and again.id == "GL-1122-0002"        # its ticket set aside: a new one
    finally:
        store.close()


def test_a_ticket_read_from_postgres_is_built_once(pg_url, tmp_path, monkeypatch):
    """Each row is built as a ticket to check it reads; readers asking for tickets get
    those, not a second build from the row."""
    from broadcaster.tickets.model import Ticket
    from tests.test_store_contract import T0

    store = open_store(tmp_path / "var", url=pg_url)
    tickets = store.tickets()
    made = [opened(tickets, at=T0 + timedelta(minutes=i))[0].id for i in range(3)]
    tickets.change(made[0], lambda t: t.add(T0 + timedelta(hours=1), "wang-li", "closed"))
    built: list[str] = []
    build = Ticket.from_record.__func__
    monkeypatch.setattr(Ticket, "from_record",
                        classmethod(lambda cls, r: built.append(r["id"]) or build(cls, r)))
    assert sorted(t.id for t in tickets.every_ticket()) == made and sorted(built) == made
    built.clear()
    assert [t.id for t in tickets.archived_tickets()] == [made[0]] and built == [made[0]]
    built.clear()
    assert [t.id for t in tickets.open_tickets(where=lambda r: r["id"] == made[2])] == [made[2]]
    assert sorted(built) == made[1:]
    built.clear()
    assert tickets.get(made[1]).id == made[1] and built == [made[1]]
    store.close()


def test_two_staff_changing_one_ticket_from_one_read_one_wins(pg_url, tmp_path):
    """Both read version 1, both apply their change, then both write: one UPDATE finds the
    row still at version 1, the other none and is told."""
    from broadcaster.tickets.store import StaleTicket

    stores = [open_store(tmp_path / f"var{i}", url=pg_url) for i in range(2)]
    try:
        t, _ = opened(stores[0].tickets())
        both_read = threading.Barrier(2, timeout=10)

        def change(i):
            def apply(x):
                both_read.wait()
                x.staff = f"staff-{i}"
                x.add(datetime.now(TZ), f"staff-{i}", "assigned")
            try:
                return stores[i].tickets().change(t.id, apply, expected_version=1)
            except StaleTicket as exc:
                return exc

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(change, range(2)))
        won = [r for r in results if not isinstance(r, Exception)]
        lost = [r for r in results if isinstance(r, StaleTicket)]
        assert len(won) == 1 and len(lost) == 1
        assert f"now 2: assigned by {won[0].staff}" in str(lost[0])
        stored = stores[1].tickets().get(t.id)
        assert stored.version == 2 and stored.staff == won[0].staff
        assert [c.by for c in stored.history] == ["resident", won[0].staff]
    finally:
        for s in stores:
            s.close()


def test_bookkeeping_racing_a_change_loses_neither(pg_url, tmp_path):
    stores = [open_store(tmp_path / f"var{i}", url=pg_url) for i in range(2)]
    try:
        t, _ = opened(stores[0].tickets())
        both_read = threading.Barrier(2, timeout=10)

        tries = {"accept": 0, "note": 0}

        def first_try(name):
            tries[name] += 1
            if tries[name] == 1:     # both read the same row; a second try reads anew
                both_read.wait()

        def accept(x):
            first_try("accept")
            x.add(datetime.now(TZ), "wang-li", "accepted")

        def note(x):
            first_try("note")
            x.notices.append({"key": "k"})

        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(stores[0].tickets().change, t.id, accept, expected_version=1)
            b = pool.submit(stores[1].tickets().change, t.id, note, bump=False)
            a.result(), b.result()
        got = stores[0].tickets().get(t.id)
        assert got.version == 2 and got.status == "accepted" and got.notices == [{"key": "k"}]
        assert sorted(tries.values()) == [1, 2]          # one wrote, the other tried again
    finally:
        for s in stores:
            s.close()


def test_staff_on_six_machines_changing_one_ticket_exactly_one_wins(troot, pg_url):
    env = {"BROADCASTER_DATABASE_URL": pg_url}
    opened_ = cli(troot, "tickets", "open", "楼道垃圾三天没清", "--group", "hlz-g01", "--json", env=env)
    tid, version = opened_.json()["id"], opened_.json()["version"]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: cli_process(
            troot, "tickets", "assign", tid, "li-qiang" if i % 2 else "zhang-hua", "--if-version",
            str(version), "--note", f"terminal {i}", "--json", env=env), range(6)))
    assert sorted(r.code for r in results) == [0, 1, 1, 1, 1, 1], [r.err for r in results]
    for r in results:
        if r.code:
            assert "changed since you read it" in r.err and f"version {version}, now" in r.err
    shown = cli(troot, "tickets", "show", tid, "--json", env=env).json()
    assert shown["version"] == version + 1
    assert [h["note"] for h in shown["history"]].count(
        next(r.json()["history"][-1]["note"] for r in results if r.code == 0)) == 1


def test_db_import_copies_tickets_and_the_journal_and_is_safe_twice(troot, pg_url):
    files = {"BROADCASTER_DATABASE_URL": ""}
    pg = {"BROADCASTER_DATABASE_URL": pg_url}
    with time_machine.travel(MONDAY, tick=False):
        for text, group in (("楼道垃圾三天没清", "hlz-g01"), ("路灯坏了", "huju-g01"),
                            ("垃圾又没清", "hlz-g01")):
            assert cli(troot, "tickets", "open", text, "--group", group, "--json", env=files).code == 0
        assert cli(troot, "tickets", "reject", "GL-1123-0003", "--reason", "重复", "--by", "zhang-hua",
                   env=files).code == 0
        assert cli(troot, "run-once", env=files).code == 0          # archives the rejected one
        assert (troot / "var" / "tickets" / "archive").is_dir()
        app_store = open_store(troot / "var", url="")
        j = journal.Journal(app_store, TZ)
        j.start()
        j.append({"type": "message", "key": "generic:m1", "text": "医保怎么交"}, dedup=True)
        j.append({"type": "miss", "key": "generic:m1", "group": "hlz-g01", "text": "医保怎么交",
                  "at": MONDAY.isoformat()})
        j.stop()
        before = {args: cli(troot, *args, env=files).json() for args in (
            ("tickets", "list", "--json"), ("tickets", "list", "--status", "rejected", "--json"),
            ("tickets", "show", "GL-1123-0001", "--json"), ("faq", "misses", "--json"))}
        first = cli(troot, "db", "import", "--json", env=pg)
        assert first.code == 0, first.err
        second = cli(troot, "db", "import", "--json", env=pg)
        after = {args: cli(troot, *args, env=pg).json() for args in before}
        assert after == before
        new = cli(troot, "tickets", "open", "垃圾还在", "--group", "hlz-g01", "--json", env=pg)
    assert (first.json()["tickets"], first.json()["tickets_skipped"]) == (3, 0)
    assert first.json()["journal_records"] == 2
    assert (second.json()["tickets"], second.json()["tickets_skipped"]) == (0, 3)
    assert second.json()["journal_records"] == 0
    assert new.json()["id"] == "GL-1123-0004"        # the numbering came along
    assert len(before[("faq", "misses", "--json")]) == 1


def test_one_message_is_journaled_once_across_two_servers(pg_url, tmp_path):
    stores = [open_store(tmp_path / f"var{i}", url=pg_url) for i in range(2)]
    journals = [journal.Journal(s, TZ) for s in stores]
    try:
        for j in journals:
            j.start()
        msg = {"type": "message", "key": "generic:retry-1", "text": "医保怎么交"}
        assert journals[0].append(msg, dedup=True)
        assert not journals[1].append(msg, dedup=True)      # the platform retried elsewhere
        journals[1].append({"type": "outcome", "key": "generic:retry-1", "at": "x"})
        assert [r["type"] for r in journal.read(stores[0])] == ["message", "outcome"]
    finally:
        for j in journals:
            j.stop()
        for s in stores:
            s.close()


KILLED = """
import sys
from zoneinfo import ZoneInfo
from broadcaster.inbound.journal import Journal
from broadcaster.store import open_store

j = Journal(open_store(sys.argv[1], url=sys.argv[2]), ZoneInfo("Asia/Shanghai"))
j.start()
for i in range(100000):
    j.append({"type": "message", "key": f"generic:{i}", "text": "停水了吗"}, dedup=True)
    print(i, flush=True)      # the platform is answered now
"""


@pytest.mark.parametrize("kind", ["files", "postgres"])
def test_an_acknowledged_message_survives_a_kill_9(kind, tmp_path, request):
    url = request.getfixturevalue("pg_url") if kind == "postgres" else ""
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "var"), url], cwd=REPO,
                         stdout=subprocess.PIPE, text=True)
    acked = []
    try:
        for line in p.stdout:
            acked.append(int(line))
            if len(acked) >= 200:
                break
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait(timeout=10)
        p.stdout.close()
    store = open_store(tmp_path / "var", url=url)
    try:
        kept = {r["key"] for r in journal.read(store)}
        assert {f"generic:{i}" for i in acked} <= kept
        assert store.journal().purge(date.today() + timedelta(days=2)) == 1   # any zone's today
        assert list(journal.read(store)) == []
    finally:
        store.close()
