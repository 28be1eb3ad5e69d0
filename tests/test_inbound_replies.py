"""Replies beside the other dispatchers, reply paths and their URL policy, the Feishu token,
the journal across restarts and its retention, and `daemon --serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta

import pytest

from broadcaster.app import App
from broadcaster.delivery.dispatch import REPLY_HANDOFF, Dispatcher
from broadcaster.delivery.ratelimit import merge_state
from broadcaster.inbound import journal
from broadcaster.inbound.replies import Answer, ReplyRoutes, queue_replies, reply_url_allowed
from broadcaster.inbound.server import ServerThread
from broadcaster.queue import outbox
from tests.conftest import REPO
from tests.inbound_world import CHATS, SECRETS, world
from tests.simulator import PlatformSimulator
from tests.simulator_inbound import InboundClient


def test_reply_urls_only_on_the_platforms_own_host_or_loopback():
    ok = ("https://oapi.dingtalk.com/robot/sendBySession?session=x", "http://127.0.0.1:9/robot/x",
          "http://localhost:1/a")
    for url in ok:
        assert reply_url_allowed("dingtalk_session", url)
    for url in ("https://evil.example/robot", "http://oapi.dingtalk.com/robot",
                "https://user:pw@oapi.dingtalk.com/x", "https://qyapi.weixin.qq.com/x", "ftp://127.0.0.1/x"):
        assert not reply_url_allowed("dingtalk_session", url), url
    assert reply_url_allowed("wecom_response", "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?x=1")


def test_rate_limit_state_is_merged_not_overwritten():
    now = 1000.0
    stored = {"keys": {"wecom:a": {"window": 60, "sends": [990.0, 995.0], "blocked_until": 0}}}
    mine = {"keys": {"wecom:a": {"window": 60, "sends": [996.0], "blocked_until": 1010.0},
                     "wecom:b": {"window": 60, "sends": [999.0], "blocked_until": 0}}}
    merged = merge_state(stored, mine, now)["keys"]
    assert merged["wecom:a"]["sends"] == [990.0, 995.0, 996.0] and merged["wecom:a"]["blocked_until"] == 1010.0
    assert merged["wecom:b"]["sends"] == [999.0]


def test_run_once_leaves_young_replies_to_serve_and_takes_over_old_ones(root, time_machine):
    with PlatformSimulator() as sim:
        w = world(root, sim, faq=False)
        app = App(root)
        gid = w.group_of["generic"]
        [(ann_id, _)] = queue_replies(app, [Answer(gid, "回答一", None, "generic:1")])
        assert Dispatcher(App(root)).run().sent == 0             # young: serve's
        assert outbox.get(app, ann_id).deliveries[0].status == "pending"
        time_machine.move_to(datetime.now().astimezone() + timedelta(seconds=REPLY_HANDOFF + 5))
        assert Dispatcher(App(root)).run().sent == 1             # serve is gone: taken over, once
        assert Dispatcher(App(root)).run().sent == 0
        assert w.robots["generic"].texts == ["回答一"]


def test_old_replies_wait_while_serve_holds_the_replies_lock(root, time_machine):
    from filelock import FileLock

    with PlatformSimulator() as sim:
        w = world(root, sim, faq=False)
        app = App(root)
        queue_replies(app, [Answer(w.group_of["generic"], "回答二", None, "generic:2")])
        time_machine.move_to(datetime.now().astimezone() + timedelta(seconds=REPLY_HANDOFF + 5))
        app.store.ensure()
        with FileLock(app.store.locks_dir / "replies.lock"):
            import threading

            result = {}
            t = threading.Thread(target=lambda: result.update(sent=Dispatcher(App(root)).run().sent))
            t.start()
            t.join()
        assert result["sent"] == 0 and w.robots["generic"].texts == []


def test_feishu_tenant_token_is_fetched_once_and_refreshed(root):
    import requests

    with PlatformSimulator() as sim:
        world(root, sim, faq=False)
        app_robot = sim.add_robot("feishu_app", SECRETS["feishu_app_id"], secret=SECRETS["feishu_app_secret"])
        app = App(root)
        routes = ReplyRoutes(app)
        cfg = app.groups.inbound.feishu
        session = requests.Session()
        first = routes.tenant_token(cfg, session)
        assert routes.tenant_token(cfg, session) == first and app_robot.attempts == 1
        key = (cfg.api_base, cfg.app_id)
        routes._tokens[key] = (first, time.time() + 60)           # about to expire
        assert routes.tenant_token(cfg, session) != first and app_robot.attempts == 2
        assert first not in app.redact(f"token {first}")   # a fetched token is a secret too


def test_messages_stored_before_a_crash_are_answered_at_restart(root):
    with PlatformSimulator() as sim:
        w = world(root, sim)
        app = App(root)
        # what a server killed right after storing (before working) leaves behind
        j = journal.Journal(app.store, app.tz)
        j.start()
        j.append({"type": "message", "key": "generic:crash-1", "platform": "generic",
                  "chat": f"generic:{CHATS['generic']}", "group": w.group_of["generic"],
                  "message_id": "crash-1", "sender_id": "u1", "sender_name": "张阿姨", "text": "医保怎么交",
                  "addressed": True, "is_bot": False, "received_at": app.now().isoformat(),
                  "reply_route": None}, dedup=True)
        j.stop()
        with ServerThread(App(root)) as server:
            deadline = time.monotonic() + 10
            while not w.robots["generic"].texts and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "城乡居民医保" in w.robots["generic"].texts[0]
            # the platform retries the same message after the restart: still answered once
            InboundClient(server.url).generic(SECRETS["generic"], CHATS["generic"], "医保怎么交",
                                              message_id="crash-1")
            time.sleep(1)
        assert len(w.robots["generic"].texts) == 1


def test_resident_messages_are_deleted_after_the_retention(root):
    with PlatformSimulator() as sim:
        world(root, sim, faq=False)
    app = App(root)
    d = app.store.journal().dir
    d.mkdir(parents=True)
    today = date.today()
    for days in (0, 179, 181, 400):
        (d / f"{today - timedelta(days=days)}.jsonl").write_text("{}\n")
    from broadcaster.schedule.passes import purge_resident_messages

    assert purge_resident_messages(app, datetime.now(app.tz)) == 2
    assert sorted(p.name for p in d.iterdir()) == sorted(
        f"{today - timedelta(days=n)}.jsonl" for n in (0, 179))


@pytest.mark.slow
def test_daemon_serve_answers_and_stops_on_sigterm(root):
    import socket

    with PlatformSimulator() as sim:
        w = world(root, sim)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root), "daemon",
                                 "--serve", "--port", str(port)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ})
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", proc)
            client = InboundClient(f"http://127.0.0.1:{port}")
            r = client.generic(SECRETS["generic"], CHATS["generic"], "狗证在哪办")
            assert r.status_code == 200
            deadline = time.monotonic() + 10
            while not w.robots["generic"].texts and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "养犬登记" in w.robots["generic"].texts[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
        for secret in SECRETS.values():
            assert secret not in err.decode()


def test_no_getupdates_polling_in_webhook_mode(root):
    from broadcaster.sources.members import poll_telegram

    with PlatformSimulator() as sim:
        world(root, sim, faq=False)
        assert poll_telegram(App(root)) == [] and sim.gets == []
        text = (root / "groups.yaml").read_text(encoding="utf-8")
        (root / "groups.yaml").write_text(text.replace("secret_token: tg-secret_token-42", "mode: poll"),
                                          encoding="utf-8")
        poll_telegram(App(root))
        assert any(path.endswith("/getMe") for path in sim.gets)   # poll mode: getUpdates as before


def _serve(root, port):
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root), "serve",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Wait for the server to answer /healthz (generous: a loaded test machine starts it
    slowly); fail at once, with its stderr, if ``proc`` ends first."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server ended ({proc.returncode}): {proc.stderr.read()[-2000:]!r}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).text == "ok":
                return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_message(root):
    import socket

    with PlatformSimulator(latency=0.05) as sim:   # answers in flight when the server dies
        robots = [sim.add_robot("webhook") for _ in range(40)]
        extra = [{"id": f"k{i:02d}", "name": f"第{i}网格群", "channel": r.config(),
                  "chats": [f"generic:k{i:02d}"]} for i, r in enumerate(robots)]
        world(root, sim, extra_groups=extra)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        proc = _serve(root, port)
        try:
            _wait_healthy(url, proc)
            client = InboundClient(url)
            for i in range(40):
                assert client.generic(SECRETS["generic"], f"k{i:02d}", "居住证怎么办",
                                      message_id=f"kill-{i}").status_code == 200
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        proc = _serve(root, port)
        try:
            _wait_healthy(url, proc)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(r.texts for r in robots):
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
        assert all(r.texts for r in robots), [i for i, r in enumerate(robots) if not r.texts]
        # only answers in flight at the kill may repeat (at most the sender's pool)
        assert sum(len(r.texts) for r in robots) - 40 <= 16


def test_a_line_torn_by_a_crash_or_a_full_disk_costs_no_later_record(tmp_path, monkeypatch):
    import errno
    from zoneinfo import ZoneInfo

    from broadcaster.store import open_store
    from broadcaster.store.filejournal import FileJournal

    today = date(2026, 11, 23)
    shelf = FileJournal(tmp_path / "var")
    shelf.write(today, [{"type": "message", "key": "generic:1"}], [True])
    shelf.close()
    day_file = tmp_path / "var" / "inbound" / "2026-11-23.jsonl"
    with day_file.open("ab") as fh:
        fh.write(b'{"type":"message","key":"generic:2","te')    # the power went mid-write
    real_write = os.write
    calls = []

    def disk_fills(fd, data):            # half a batch goes down, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    shelf.write(today, [{"type": "message", "key": "generic:3"}], [True])
    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(OSError):
        shelf.write(today, [{"type": "message", "key": "generic:4", "text": "停水了吗"}], [True])
    monkeypatch.setattr(os, "write", real_write)
    shelf.write(today, [{"type": "message", "key": "generic:4", "text": "停水了吗"}], [True])
    shelf.close()
    store = open_store(tmp_path / "var", url="")
    try:
        kept = [r["key"] for r in journal.read(store, datetime(2026, 11, 23, tzinfo=ZoneInfo("UTC")),
                                               ZoneInfo("UTC"))]
    finally:
        store.close()
    assert kept == ["generic:1", "generic:3", "generic:4"]
