"""Through the real CLI: announce -> loopback platforms -> report, and what can go wrong."""

from __future__ import annotations

import json
import stat

import pytest
import yaml

from tests.conftest import cli
from tests.simulator import PlatformSimulator


@pytest.fixture
def sim():
    with PlatformSimulator() as s:
        yield s


def write_root(root, robots: dict, *, quiet: str | None = None):
    groups = []
    for gid, (robot, tags) in robots.items():
        groups.append({"id": gid, "name": f"{gid}群", "tags": tags, "channel": robot.config(),
                       "location": {"name": "鼓楼区", "lat": 32.06, "lon": 118.78}})
    doc = {"defaults": {"timezone": "Asia/Shanghai", "quiet_hours": quiet}, "groups": groups}
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def test_announce_to_every_platform_and_report(root, sim):
    robots = {
        "wc": (sim.add_robot("wecom"), ["kind:grid", "street:a"]),
        "dt": (sim.add_robot("dingtalk", secret="SECdt", keywords=["通知"]), ["kind:grid"]),
        "fs": (sim.add_robot("feishu", secret="fs-secret"), ["kind:grid"]),
        "tg": (sim.add_robot("telegram"), ["kind:function"]),
        "sl": (sim.add_robot("slack"), ["kind:function"]),
        "dc": (sim.add_robot("discord"), ["kind:function"]),
        "wh": (sim.add_robot("webhook", secret="wh-secret"), ["kind:function"]),
    }
    write_root(root, robots)
    r = cli(root, "announce", "**通知**：明天 9:00-17:00 停水 <请储水> & 注意", "--to", "all",
            "--exclude", "id:sl", "--mention-all", "--json")
    assert r.code == 0, r.err
    ann = r.json()
    assert ann["targets"] == 6 and ann["status"] == "queued"
    run = cli(root, "run-once", "--json")
    assert run.code == 0, run.err
    assert run.json()["sent"] == 6 and run.json()["pending"] == 0
    for gid, (robot, _) in robots.items():
        got = [t for t in robot.texts if "9:00-17:00 停水" in t]
        if gid == "sl":
            assert got == []
        else:
            assert got and "9:00-17:00 停水" in robot.texts[0], (gid, robot.texts)
    assert robots["wc"][0].messages[-1].payload["text"]["mentioned_list"] == ["@all"]
    assert "&lt;请储水&gt; &amp;" in robots["tg"][0].texts[0]  # Telegram HTML escaping
    rep = cli(root, "report", ann["id"], "--json").json()
    assert rep["sent"] == 6 and rep["status"] == "done" and rep["not_delivered"] == []
    log = cli(root, "log", "--announcement", ann["id"], "--json").json()
    assert {row["group"] for row in log} == {"wc", "dt", "fs", "tg", "dc", "wh"}


def test_failures_are_classified_retried_and_reported(root, sim, monkeypatch):
    good = sim.add_robot("wecom")
    flaky = sim.add_robot("wecom").fail_next("5xx", 1)
    write_root(root, {"good": (good, ["kind:grid"]), "flaky": (flaky, ["kind:grid"])})
    removed = {"type": "wecom", "url": f"{sim.base_url}/cgi-bin/webhook/send?key=not-a-robot"}
    doc = yaml.safe_load((root / "groups.yaml").read_text())
    doc["groups"].append({"id": "gone", "name": "已解散群", "tags": ["kind:grid"], "channel": removed})
    (root / "groups.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    ann = cli(root, "announce", "社区通知", "--to", "kind:grid", "--json").json()
    env = {"BROADCASTER_RETRY_BASE": "0"}
    first = cli(root, "run-once", "--json", env=env).json()
    assert (first["sent"], first["failed"], first["pending"]) == (1, 1, 1)
    show = cli(root, "queue", "show", ann["id"], "--json").json()
    rows = {d["group"]: d for d in show["deliveries"]}
    assert rows["gone"]["status"] == "failed" and "93000" in (rows["gone"]["last_error"] + str(rows["gone"]))
    assert rows["flaky"]["status"] == "pending" and rows["flaky"]["attempts"] == 1
    second = cli(root, "run-once", "--json", env=env).json()
    assert second["sent"] == 1 and second["pending"] == 0
    rep = cli(root, "report", ann["id"], "--json").json()
    assert rep["sent"] == 2 and rep["failed"] == 1
    assert [x["group"] for x in rep["not_delivered"]] == ["gone"]
    assert "not-a-robot" not in json.dumps(rep)  # the key in the URL never shows
    # queue retry puts the failed one back
    assert cli(root, "queue", "retry", ann["id"]).code == 0
    assert cli(root, "queue", "show", ann["id"], "--json").json()["pending"] == 1


def test_platform_rate_limit_is_retried_not_dropped(root, sim):
    robot = sim.add_robot("wecom").fail_next("rate_limit", 1)
    write_root(root, {"g": (robot, ["kind:grid"])})
    ann = cli(root, "announce", "垃圾分类提醒", "--to", "all", "--json").json()
    env = {"BROADCASTER_RETRY_BASE": "0"}
    cli(root, "run-once", env=env)
    row = cli(root, "queue", "show", ann["id"], "--json").json()["deliveries"][0]
    assert row["status"] == "pending" and "45009" in str(row)
    assert row["next_attempt_at"] is not None


def test_long_message_is_split_and_sent_in_order(root, sim):
    robot = sim.add_robot("wecom")
    write_root(root, {"g": (robot, ["kind:grid"])})
    text = "\n\n".join(f"第{i}段：" + "社区通知内容" * 40 for i in range(1, 13))  # ~9 KB
    dry = cli(root, "announce", text, "--to", "all", "--dry-run", "--json").json()
    [p] = dry["previews"]
    assert len(p["parts"]) >= 3 and all(s <= p["limit"] == 4096 for s in p["sizes"])
    assert p["parts"][0].startswith("(1/")
    assert not list((root / "var" / "active").glob("*.json")) if (root / "var").exists() else True
    cli(root, "announce", text, "--to", "all")
    assert cli(root, "run-once", "--json").json()["sent"] == 1
    n = len(p["parts"])
    assert [t.split("\n", 1)[0] for t in robot.texts] == [f"({i}/{n})" for i in range(1, n + 1)]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["announce", "x", "--to", "street:nowhere"], 1, "matches no group"),
        (["announce", "x", "--to", "all", "--at", "25:99"], 1, "--at"),
        (["announce", "x", "--to", "all", "--at", "tomorrow"], 1, "--at"),
        (["announce", "x", "--to", "all", "--expires", "forever"], 1, "--expires"),
        (["announce", "--to", "all"], 2, "nothing to announce"),
        (["announce", "x", "--to", "all", "--var", "novalue"], 1, "--var"),
        (["announce", "x", "--to", "all", "--bogus"], 2, "bogus"),
        (["queue", "show", "nope"], 1, "no announcement"),
        (["log", "--status", "weird"], 1, "--status"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(root, sim, args, code, needle):
    write_root(root, {"g": (sim.add_robot("wecom"), ["kind:grid"])})
    r = cli(root, *args)
    assert r.code == code, (r.out, r.err)
    assert needle in r.err and "Traceback" not in r.err
    active = root / "var" / "active"
    assert not active.exists() or not list(active.iterdir())


def test_oversize_file_is_refused(root, sim, tmp_path):
    write_root(root, {"g": (sim.add_robot("wecom"), ["kind:grid"])})
    big = tmp_path / "big.md"
    big.write_text("大" * 40_000, encoding="utf-8")
    r = cli(root, "announce", "--file", str(big), "--to", "all")
    assert r.code == 1 and "KiB" in r.err
    ok = cli(root, "announce", "--file", "-", "--to", "all", "--json", stdin="标准输入的通知")
    assert ok.code == 0 and ok.json()["targets"] == 1


def test_config_errors_exit_1_with_file_and_line(root):
    (root / "groups.yaml").write_text(
        "groups:\n  - id: a\n    name: A\n    channel: {type: wecom, url: \"${NOT_SET_ANYWHERE}\"}\n"
        "  - id: a\n    name: B\n    channel: {type: pigeon}\n", encoding="utf-8")
    r = cli(root, "groups", "list")
    assert r.code == 1
    assert "groups.yaml:4" in r.err and "NOT_SET_ANYWHERE" in r.err
    assert "duplicate group id" in r.err and "pigeon" in r.err


def test_secrets_never_show_and_state_is_0600(root, sim):
    robot = sim.add_robot("dingtalk", key="tok-SECRET-1234", secret="SEC-SIGN-5678")
    robot.fail_next("5xx", 1)
    write_root(root, {"g": (robot, ["kind:grid"])})
    outputs = []
    for args in (["groups", "list", "--json"], ["announce", "通知", "--to", "all", "--json"],
                 ["announce", "通知", "--to", "all", "--dry-run", "--json"],
                 ["run-once", "--json"], ["log", "--json"], ["status", "--json"],
                 ["queue", "list", "--all", "--json"]):
        r = cli(root, *args, env={"BROADCASTER_RETRY_BASE": "0"})
        outputs.append(r.out + r.err)
    blob = "\n".join(outputs)
    for p in (root / "var").rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
            if p.suffix == ".json":
                blob += p.read_text(encoding="utf-8")
        else:
            assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
    assert "tok-SECRET-1234" not in blob and "SEC-SIGN-5678" not in blob


def test_sender_respects_the_robot_rate_limit_so_the_platform_never_refuses(root, sim):
    robot = sim.add_robot("wecom")  # 20 messages per minute, enforced by the simulator
    write_root(root, {"g": (robot, ["kind:grid"])})
    for i in range(23):
        assert cli(root, "announce", f"第{i}条", "--to", "all").code == 0
    run = cli(root, "run-once", "--json").json()
    assert (run["sent"], run["pending"]) == (20, 3)
    assert robot.attempts == 20  # the 21st was never tried: no 45009 from the platform
    # the next pass, inside the same minute, still holds them back (the window is persisted)
    assert cli(root, "run-once", "--json").json()["sent"] == 0
    assert robot.attempts == 20


def test_scheduled_announcement_and_json_shapes(root, sim):
    write_root(root, {"g1": (sim.add_robot("wecom"), ["kind:grid"]),
                      "g2": (sim.add_robot("slack"), ["kind:function"])})
    groups = cli(root, "groups", "list", "--json").json()
    assert [(g["id"], g["channel"], g["tags"]) for g in groups] == [
        ("g1", "wecom", ["kind:grid"]), ("g2", "slack", ["kind:function"])]
    ann = cli(root, "announce", "周六社区义诊", "--to", "all", "--at", "+2h", "--json").json()
    assert set(ann) >= {"id", "targets", "scheduled_for", "status"}
    from datetime import datetime, timedelta

    delay = datetime.fromisoformat(ann["scheduled_for"]) - datetime.now().astimezone()
    assert timedelta(hours=1, minutes=59) < delay <= timedelta(hours=2)
    assert ann["scheduled_for"][-6:] == "+08:00"  # ISO 8601 with the default zone's offset
    assert cli(root, "run-once", "--json").json() == {
        "fired": [], "sent": 0, "failed": 0, "pending": 2, "expired": 0, "held": 0, "problems": [],
        "errors": []}
    [row] = cli(root, "queue", "list", "--json").json()
    assert set(row) >= {"id", "created_at", "scheduled_for", "status", "targets", "sent",
                        "failed", "pending"}
    assert (row["status"], row["targets"], row["pending"]) == ("queued", 2, 2)
    assert cli(root, "queue", "cancel", ann["id"]).code == 0
    assert cli(root, "queue", "list", "--json").json() == []
    shown = cli(root, "queue", "show", ann["id"], "--json").json()
    assert shown["status"] == "cancelled" and shown["cancelled"] == 2
    assert {d["status"] for d in shown["deliveries"]} == {"cancelled"}
