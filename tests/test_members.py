"""Welcomes: joins within the window greeted together, once; Telegram getUpdates poller."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from broadcaster.app import App
from broadcaster.errors import InputError
from broadcaster.queue import outbox
from broadcaster.sources import members
from tests.conftest import cli, write_groups
from tests.test_news import Loopback

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=SH)


@pytest.fixture
def app(root: Path, tmp_path: Path):
    with Loopback() as srv:
        write_groups(root, f"""
            groups:
              - {{id: hlz, name: 汇林绿洲群, tags: [x], channel: {{type: file, path: out}}}}
              - id: elder
                name: 银发群
                tags: [x]
                channel: {{type: file, path: out}}
                templates: {{welcome: welcome_elderly}}
              - id: tg
                name: 电报群
                tags: [x]
                channel: {{type: telegram, token: "123:SECRET", chat_id: -1001,
                           api_base: "{srv.url}"}}
        """)
        a = App(root, tmp_path / "state")
        a.srv = srv
        yield a


def welcomes(app) -> list[tuple[str, str]]:
    return [(d.group, a.body(d)) for a in outbox.active(app) for d in a.deliveries]


def test_joins_within_window_are_greeted_together_once(app):
    info = members.record_joins(app, "hlz", ["张阿姨"], T0)
    assert info["welcome_at"] == "2026-11-22T10:05:00+08:00"
    later = T0 + timedelta(minutes=3)
    members.record_joins(app, "hlz", ["李师傅", "张阿姨", "@all <b>王</b>"], later)
    assert members.flush_welcomes(app, T0 + timedelta(minutes=4)) == 0
    assert members.flush_welcomes(app, T0 + timedelta(minutes=5)) == 1
    assert members.flush_welcomes(app, T0 + timedelta(minutes=6)) == 0
    [(group, body)] = welcomes(app)
    assert group == "hlz" and "张阿姨" in body and "李师傅" in body
    assert "@all" not in body and "<b>" not in body


def test_group_welcome_override_and_unknown_group(app):
    members.record_joins(app, "elder", ["赵奶奶"], T0)
    members.flush_welcomes(app, T0 + timedelta(minutes=5))
    [(group, body)] = welcomes(app)
    assert group == "elder"
    assert "我们帮您办" in body and "欢迎新邻居" not in body   # welcome_elderly, not welcome
    with pytest.raises(InputError, match="did you mean hlz"):
        members.record_joins(app, "hlzz", ["x"], T0)


def test_cli_join(app):
    env = {"BROADCASTER_STATE_DIR": str(app.state_dir)}
    res = cli(app.root, "members", "join", "hlz", "张阿姨", "李师傅", "--json", env=env)
    assert res.code == 0, res.err
    assert res.json()["pending"] == ["张阿姨", "李师傅"]
    res = cli(app.root, "members", "join", "hlz", "钱大爷", "--now", env=env)
    assert res.code == 0 and "welcome queued" in res.out
    assert len(welcomes(app)) == 1


def test_telegram_poller(app):
    srv = app.srv
    updates = [
        {"update_id": 10, "message": {"chat": {"id": -1001}, "new_chat_members": [
            {"id": 1, "is_bot": False, "first_name": "小明"},
            {"id": 999, "is_bot": True, "first_name": "本机器人"}]}},
        {"update_id": 11, "chat_member": {"chat": {"id": -1001},
                                          "old_chat_member": {"status": "left", "user": {"id": 2}},
                                          "new_chat_member": {"status": "member", "user": {
                                              "id": 2, "is_bot": False, "first_name": "小红",
                                              "last_name": "李"}}}},
        {"update_id": 12, "message": {"chat": {"id": -5}, "new_chat_members": [
            {"id": 3, "is_bot": False, "first_name": "别的群"}]}},
    ]
    seen_offsets = []

    def get_updates(h):
        q = parse_qs(urlsplit(h.path).query)
        seen_offsets.append(q.get("offset", [None])[0])
        offset = int(q.get("offset", ["0"])[0])
        result = [u for u in updates if u["update_id"] >= offset]
        return 200, {}, json.dumps({"ok": True, "result": result}).encode()

    srv.routes["/bot123:SECRET/getMe"] = lambda h: (200, {}, json.dumps(
        {"ok": True, "result": {"id": 999, "is_bot": True}}).encode())
    srv.routes["/bot123:SECRET/getUpdates"] = get_updates
    found = members.poll_telegram(app, now=T0)
    assert found == [("tg", ["小明"]), ("tg", ["小红 李"])]
    assert members.poll_telegram(app, now=T0) == []
    assert seen_offsets == [None, "13"]
    state = json.dumps(app.store.read_state("telegram"))
    assert "SECRET" not in state
    members.flush_welcomes(app, T0 + timedelta(minutes=5))
    [(group, body)] = welcomes(app)
    assert group == "tg" and "小明" in body and "本机器人" not in body


def test_telegram_errors_are_logged_without_token(app, caplog):
    app.srv.routes["/bot123:SECRET/getMe"] = lambda h: (401, {}, json.dumps(
        {"ok": False, "error_code": 401, "description": "Unauthorized"}).encode())
    assert members.poll_telegram(app, now=T0) == []
    assert "getMe: 401 Unauthorized" in caplog.text
    assert "SECRET" not in caplog.text
    assert app.store.read_state("telegram") == {}            # nothing learnt from a refusal
