"""The PostgreSQL store through the command line: same commands, same JSON; schema checks;
``db import``; claims shared by sessions of different dispatchers."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import psycopg
import pytest

from broadcaster.store import open_store
from broadcaster.store.pgschema import MIGRATIONS
from tests.conftest import cli, write_groups
from tests.test_store_contract import LATER, announcement, finish, sent

GROUPS = """
defaults: {timezone: Asia/Shanghai}
groups:
""" + "".join(f"""  - id: g{i:02d}
    name: 第{i}网格群
    tags: [kind:grid]
    channel: {{type: file, path: out}}
""" for i in range(1, 6))

VOLATILE = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}|\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d|"
                      r"\"(latency_ms|duration_s)\": [\d.]+")


@pytest.fixture
def proj(root):
    write_groups(root, GROUPS)
    return root


def session_of(root, env):
    """announce, run-once, then what staff read: the JSON of each, ids and times masked."""
    out = {}
    ann = cli(root, "announce", "停水通知：明天9:00-17:00停水。", "--to", "all", "--json", env=env)
    assert ann.code == 0, ann.err
    ann_id = ann.json()["id"]
    later = cli(root, "announce", "周末活动", "--to", "kind:grid", "--at", "+2h", "--json", env=env)
    assert later.code == 0, later.err
    for name, args in (("run", ("run-once", "--json")), ("queue", ("queue", "list", "--json")),
                       ("all", ("queue", "list", "--all", "--json")),
                       ("report", ("report", ann_id, "--json")), ("log", ("log", "--json")),
                       ("cancel", ("queue", "cancel", later.json()["id"], "--json")),
                       ("after", ("queue", "list", "--all", "--json"))):
        res = cli(root, *args, env=env)
        assert res.code == 0, (name, res.err)
        out[name] = masked(res.json())
    return out


def masked(doc):
    """The JSON as text with ids and times masked; a list's items in a fixed order (two
    announcements queued in the same second may come in either order)."""
    if isinstance(doc, list):
        return sorted(masked(item) for item in doc)
    return VOLATILE.sub("<x>", json.dumps(doc, ensure_ascii=False, indent=2))


def test_the_commands_answer_the_same_on_postgres(proj, tmp_path, pg_url):
    import shutil

    other = tmp_path / "other-root"
    shutil.copytree(proj, other)
    on_files = session_of(other, {"BROADCASTER_DATABASE_URL": ""})
    on_pg = session_of(proj, {"BROADCASTER_DATABASE_URL": pg_url})
    assert on_pg == on_files
    assert json.loads(on_pg["run"].replace("<x>", "0"))["sent"] == 5
    assert (proj / "out" / "g03.md").read_text().count("---\n") == 1   # sent once
    assert not (proj / "var" / "active").exists()        # nothing of the queue under var/
    assert not (proj / "var" / "archive").exists()


def test_the_log_of_a_group_or_a_state_answers_the_same_on_postgres(proj, tmp_path, pg_url):
    """Those rows are picked by the store (on PostgreSQL by the index), not after reading
    every row of every announcement."""
    import shutil

    other = tmp_path / "other-root"
    shutil.copytree(proj, other)
    asks = (("log", "--group", "g02", "--json"), ("log", "--status", "cancelled", "--json"),
            ("log", "--status", "sent", "--group", "g03", "--limit", "1", "--json"),
            ("log", "--group", "nobody", "--json"))
    answers = []
    for root, env in ((other, {"BROADCASTER_DATABASE_URL": ""}),
                      (proj, {"BROADCASTER_DATABASE_URL": pg_url})):
        assert cli(root, "announce", "停水通知", "--to", "all", env=env).code == 0
        assert cli(root, "run-once", env=env).code == 0
        later = cli(root, "announce", "周末活动", "--to", "all", "--at", "+2h", "--json", env=env)
        assert cli(root, "queue", "cancel", later.json()["id"], env=env).code == 0
        got = [cli(root, *args, env=env) for args in asks]
        assert all(r.code == 0 for r in got), [r.err for r in got]
        answers.append([r.json() for r in got])
    on_files, on_pg = answers
    assert [masked(a) for a in on_pg] == [masked(a) for a in on_files]
    group, cancelled, one, nobody = on_pg
    assert sorted(r["status"] for r in group) == ["cancelled", "sent"]
    assert len(cancelled) == 5 and {r["status"] for r in cancelled} == {"cancelled"}
    assert [(r["group"], r["status"]) for r in one] == [("g03", "sent")] and nobody == []


def test_db_upgrade_creates_the_schema_once_and_a_daemon_refuses_an_unknown_one(proj, pg_server):
    url = pg_server.create_db("fresh_upgrade")
    env = {"BROADCASTER_DATABASE_URL": url}
    missing = cli(proj, "status", "--json", env=env)
    assert missing.code == 1 and "run `broadcaster db upgrade`" in missing.err
    first = cli(proj, "db", "upgrade", "--json", env=env)
    assert first.code == 0 and first.json()["applied"] == [v for v, _, _ in MIGRATIONS]
    again = cli(proj, "db", "upgrade", env=env)
    assert again.code == 0 and "up to date" in again.out
    assert cli(proj, "status", env=env).code == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO broadcaster_schema (version, name) VALUES (99, 'future')")
    newer = cli(proj, "run-once", env=env)
    assert newer.code == 1
    assert "schema version 99, newer than this broadcaster knows" in newer.err
    assert "postgresql://" in newer.err


def test_a_database_with_history_at_the_first_schema_upgrades_and_reads_back(proj, pg_server):
    """Every later migration applies over rows written at version 1 (an office upgrading)."""
    from psycopg.types.json import Jsonb

    from broadcaster.store.pgstore import delivery_params
    from tests.test_store_contract import finish

    url = pg_server.create_db("from_first_schema")
    day_ago = datetime.now(LATER.tzinfo).replace(microsecond=0) - timedelta(days=1)
    done = announcement(f"{day_ago:%Y%m%d-%H%M%S}-aaaaaa", groups=("g01", "g02"), at=day_ago)
    queued = announcement(f"{day_ago:%Y%m%d-%H%M%S}-bbbbbb", groups=("g03",),
                          at=day_ago + timedelta(seconds=1))
    finish(done)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE broadcaster_schema (version integer PRIMARY KEY,"
                     " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        version, name, sql = MIGRATIONS[0]
        conn.execute(sql)
        conn.execute("INSERT INTO broadcaster_schema (version, name) VALUES (%s, %s)",
                     (version, name))
        for ann in (done, queued):
            m = ann.meta
            conn.execute("INSERT INTO announcements (id, day, created_at, scheduled_for,"
                         " expires_at, status, finished, meta) VALUES (%s, %s, %s, %s, %s, %s,"
                         " %s, %s)", (m.id, m.created_at.date(), m.created_at, m.scheduled_for,
                                      m.expires_at, m.status, ann.finished, Jsonb(m.to_json())))
            for i, d in enumerate(ann.deliveries, 1):
                conn.execute("INSERT INTO deliveries (announcement, position, grp, status,"
                             " updated_at, next_attempt_at, row) VALUES (%s, %s, %s, %s, %s, %s,"
                             " %s)", delivery_params(m.id, i, d))
    env = {"BROADCASTER_DATABASE_URL": url}
    assert "run `broadcaster db upgrade`" in cli(proj, "status", env=env).err
    up = cli(proj, "db", "upgrade", "--json", env=env)
    assert up.code == 0, up.err
    assert up.json()["applied"] == [v for v, _, _ in MIGRATIONS[1:]]
    listed = cli(proj, "queue", "list", "--all", "--json", env=env).json()
    assert [(a["id"], a["status"]) for a in listed] == [(queued.id, "queued"), (done.id, "done")]
    assert [(r["group"], r["status"]) for r in cli(proj, "log", "--group", "g02", "--json",
                                                   env=env).json()] == [("g02", "sent")]
    assert cli(proj, "report", done.id, "--json", env=env).json()["sent"] == 2
    stats = cli(proj, "stats", "--since", "30d", "--json", env=env)
    assert stats.code == 0, stats.err


def test_db_commands_need_a_database_url(proj):
    res = cli(proj, "db", "upgrade", env={"BROADCASTER_DATABASE_URL": ""})
    assert res.code == 1 and "BROADCASTER_DATABASE_URL is not set" in res.err


def test_a_password_in_the_url_never_shows(proj, pg_server):
    url = pg_server.url("nowhere").replace("postgres@", "postgres:hunter2secret@")
    res = cli(proj, "status", env={"BROADCASTER_DATABASE_URL": url,
                                   "BROADCASTER_DATABASE_RETRY": "0"})
    assert res.code == 1 and "hunter2secret" not in res.err + res.out


def test_db_import_copies_the_embedded_store_and_is_safe_twice(proj, pg_url):
    files = {"BROADCASTER_DATABASE_URL": ""}
    pg = {"BROADCASTER_DATABASE_URL": pg_url}
    done = cli(proj, "announce", "已发送的通知", "--to", "all", "--json", env=files).json()["id"]
    assert cli(proj, "run-once", env=files).code == 0
    queued = cli(proj, "announce", "待发送", "--to", "all", "--at", "+1h", "--json", env=files)
    first = cli(proj, "db", "import", "--json", env=pg)
    assert first.code == 0, first.err
    assert first.json()["announcements"] == 2 and first.json()["skipped"] == 0
    assert first.json()["documents"] >= 1       # rate limits, last run…
    second = cli(proj, "db", "import", "--json", env=pg).json()
    assert second["announcements"] == 0 and second["skipped"] == 2
    listed = {a["id"]: a for a in cli(proj, "queue", "list", "--all", "--json", env=pg).json()}
    assert listed[done]["status"] == "done" and listed[done]["sent"] == 5
    assert listed[queued.json()["id"]]["status"] == "queued"
    rows = cli(proj, "log", "--json", env=pg).json()
    assert len([r for r in rows if r["announcement"] == done]) == 5
    assert cli(proj, "report", done, "--json", env=pg).json() == \
        cli(proj, "report", done, "--json", env=files).json()


def test_db_import_indexes_the_history_a_batch_at_a_time_as_the_embedded_store_did(
        tmp_path, pg_url, monkeypatch):
    from broadcaster.store import pgimport
    from broadcaster.store.files import FileStore

    src = FileStore(tmp_path / "var")
    src.ensure()
    ids = [src.add_announcement(announcement(f"202611{day:02d}-07{n:02d}00-aaaa{n:02d}",
                                             groups=("a", "b", "c"),
                                             at=LATER.replace(day=day, minute=n)))
           for n, day in enumerate((18, 18, 19, 21))]
    for ann_id in ids:
        src.change(ann_id, finish)
    queued = src.add_announcement(announcement("20261122-080000-bbbbbb"))
    monkeypatch.setattr(pgimport, "BATCH_ROWS", 4)        # 3 rows each: a batch per two
    dst = open_store(tmp_path / "pg-var", url=pg_url)
    try:
        done = pgimport.import_store(src, dst)
        assert (done.announcements, done.skipped) == (5, 0)
        assert [s["id"] for s in dst.history.summaries()] == \
            [s["id"] for s in src.history.summaries()] == ids[::-1]
        first, last = LATER.date().replace(day=1), LATER.date().replace(day=30)
        assert [(d, t.as_json()) for d, t in dst.history.check(first, last)] == \
            [(d, t.as_json()) for d, t in src.history.check(first, last)]
        assert [a.id for a in dst.active()] == [queued]
        assert pgimport.import_store(src, dst).skipped == 5
    finally:
        dst.close()


def wait_gone(url: str, token: int) -> None:
    """Until the server has noticed a closed connection and released its session's lock."""
    import time

    from broadcaster.store import pgschema

    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(200):
            live = {r[0] for r in conn.execute(pgdispatch_live(), (pgschema.LOCK_NAMESPACE,))}
            if token not in live:
                return
            time.sleep(0.02)
    raise AssertionError("the closed session's lock was never released")


def pgdispatch_live() -> str:
    from broadcaster.store.pgdispatch import LIVE_SESSIONS

    return LIVE_SESSIONS


def test_two_sessions_share_one_fan_out_and_a_dead_ones_claims_return(pg_url, tmp_path,
                                                                      monkeypatch):
    from broadcaster.store import pgdispatch

    store = open_store(tmp_path / "var", url=pg_url)
    ann_id = store.add_announcement(announcement(groups=[f"g{i}" for i in range(10)]))
    one, two = store.dispatch(), store.dispatch()
    a = one.claim(LATER, limit=4)
    b = two.claim(LATER, limit=4)
    assert len(a) == len(b) == 4
    assert not {c.delivery.group for c in a} & {c.delivery.group for c in b}
    one.record(ann_id, sent(a[0].delivery))
    one._drop_owner()              # the process died: its lock goes with its connection
    wait_gone(pg_url, one.token)
    monkeypatch.setattr(pgdispatch, "GRACE", 0.0)
    rest = two.claim(LATER, limit=20)
    assert sorted(c.delivery.group for c in rest) == sorted(
        {f"g{i}" for i in range(10)} - {c.delivery.group for c in b} - {a[0].delivery.group})
    for c in [*b, *rest]:
        two.record(ann_id, sent(c.delivery))
    two.close()
    final = store.announcement(ann_id)
    assert final.status == "done" and final.counts()["sent"] == 10
    store.close()


def test_a_live_sessions_claims_are_never_taken(pg_url, tmp_path, monkeypatch):
    from broadcaster.store import pgdispatch

    monkeypatch.setattr(pgdispatch, "GRACE", 0.0)
    store = open_store(tmp_path / "var", url=pg_url)
    store.add_announcement(announcement(groups=["a", "b"]))
    with store.dispatch() as one, store.dispatch() as two:
        assert len(one.claim(LATER)) == 2
        assert two.claim(LATER + timedelta(hours=1)) == []
    store.close()


def test_two_dispatchers_together_keep_a_shared_robots_limit(root, pg_url, monkeypatch):
    """30 groups behind one WeCom robot (20 a minute), two dispatchers at once: 20 go out,
    10 wait for the window; the platform never has to say "too fast"."""
    import threading

    import yaml

    from broadcaster.app import App
    from broadcaster.delivery.dispatch import Dispatcher
    from broadcaster.queue import outbox
    from broadcaster.queue.outbox import Message
    from broadcaster.store import pgdispatch
    from tests.simulator import PlatformSimulator

    monkeypatch.setenv("BROADCASTER_DATABASE_URL", pg_url)
    monkeypatch.setattr(pgdispatch, "BATCH", 4)       # both dispatchers get a share
    with PlatformSimulator(latency=0.01) as sim:
        robot = sim.add_robot("wecom", key="shared")
        groups = [{"id": f"g{i:02d}", "name": f"第{i}网格群", "tags": [], "channel": robot.config()}
                  for i in range(30)]
        (root / "groups.yaml").write_text(yaml.safe_dump({"groups": groups}, allow_unicode=True))
        queuer = App(root)
        ann_id = outbox.enqueue(queuer, [Message(g["id"], "共用机器人的通知") for g in groups],
                                source="test")
        queuer.store.close()
        apps = [App(root), App(root)]
        results = [None, None]

        def run(i):
            results[i] = Dispatcher(apps[i]).run()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sum(r.sent for r in results) == 20
        assert all(r.sent for r in results), "both sent"
        assert len(robot.texts) == 20 and robot.attempts == 20   # never refused
        left = outbox.get(apps[0], ann_id)
        assert left.counts()["pending"] == 10
        assert all(d.next_attempt_at > left.meta.created_at for d in left.deliveries
                   if d.status == "pending")
        for app in apps:
            app.store.close()


def test_bookings_in_the_database_match_the_limiter_of_one_process(pg_url, tmp_path):
    """``broadcaster_book`` (one statement a send) answers what ``RateLimiter`` answers, on
    the same clock: one key, two keys at once (a Telegram chat and its bot), a blocked key,
    a slot beyond ``max_wait`` (nothing booked), the window sliding on."""
    from broadcaster.channels.base import RateLimit
    from broadcaster.delivery.ratelimit import RateLimiter

    now = [1_800_000_000.0]
    store = open_store(tmp_path / "var", url=pg_url)
    shared, local = store.rate_limiter(), RateLimiter(lambda: now[0])
    shared._clock = lambda: now[0]
    robot = [("wecom:a", RateLimit(3, 60))]
    chat = [("tg:bot", RateLimit(30, 1)), ("tg:chat", RateLimit(1, 1))]
    steps = [(robot, 5), (robot, 5), (robot, 5), (robot, 5), (robot, 100), (chat, 5), (chat, 5),
             (chat, 0.5), (chat, 5), (robot, 100)]
    answers = []
    for i, (limits, max_wait) in enumerate(steps):
        if i == 8:
            for limiter in (shared, local):
                limiter.block(["tg:chat"], now[0] + 7)
        got, want = shared.reserve(limits, max_wait), local.reserve(limits, max_wait)
        assert got[0] == want[0] and got[1] == pytest.approx(want[1]), (i, got, want)
        answers.append(got[0])
        now[0] += 0.25
    assert answers == [True, True, True, False, True, True, True, False, False, True]
    with psycopg.connect(pg_url) as conn:
        sends = conn.execute("SELECT sends FROM rate_limits WHERE key = 'wecom:a'").fetchone()[0]
    assert len(sends) == 5      # three now, two a window later
    store.close()


def test_an_add_whose_commit_answer_was_lost_is_queued_once(pg_url, tmp_path):
    """The server committed the add, the answer never came back (a connection cut at that
    moment): the retry finds its own row, so the announcement is queued once, under the id
    returned; another add of the same id still gets a fresh one."""
    from contextlib import contextmanager

    store = open_store(tmp_path / "var", url=pg_url)
    real_tx, lost = store.tx, []

    @contextmanager
    def answer_lost_once():
        with real_tx() as conn:
            yield conn
        if not lost:            # committed: now the answer is lost on the way back
            lost.append(True)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    store.tx = answer_lost_once
    ann_id = store.add_announcement(announcement())
    assert lost, "the first answer was lost"
    assert [a.meta.id for a in store.active()] == [ann_id] == ["20261122-070000-abcdef"]
    assert [d.group for d in store.announcement(ann_id).deliveries] == ["a", "b"]
    other = store.add_announcement(announcement(groups=("c",)))
    assert other != ann_id and len(store.active()) == 2
    store.close()


def test_batches_claimed_while_sending_keep_one_message_at_a_time_per_group(root, pg_url,
                                                                           monkeypatch):
    """Batches of 3 claimed while the previous ones still send: a group in two batches
    (two notices to the same groups) gets its notices one after the other, in the order
    they were claimed."""
    import yaml

    from broadcaster.app import App
    from broadcaster.delivery.dispatch import Dispatcher
    from broadcaster.queue import outbox
    from broadcaster.queue.outbox import Message
    from broadcaster.store import pgdispatch
    from tests.simulator import PlatformSimulator

    monkeypatch.setenv("BROADCASTER_DATABASE_URL", pg_url)
    monkeypatch.setattr(pgdispatch, "BATCH", 3)
    with PlatformSimulator(latency=0.05) as sim:
        robots = [sim.add_robot("wecom", key=f"r{i}") for i in range(5)]
        groups = [{"id": f"g{i}", "name": f"第{i}网格群", "tags": [], "channel": r.config()}
                  for i, r in enumerate(robots)]
        (root / "groups.yaml").write_text(yaml.safe_dump({"groups": groups}, allow_unicode=True))
        app = App(root)
        queued = {outbox.enqueue(app, [Message(g["id"], text) for g in groups], source="test"): text
                  for text in ("第一条通知", "第二条通知")}
        order = [text for _, text in sorted(queued.items())]    # claimed in the order of ids
        result = Dispatcher(app, workers=4).run()
        assert result.sent == 10 and result.pending == 0
        for robot in robots:
            assert [next(x for x in order if x in t) for t in robot.texts] == order
        app.store.close()
