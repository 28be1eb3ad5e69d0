"""A damaged state file stops only itself: set aside in var/damaged/, named by
``status``, ``check`` and the log; derived state rebuilt with a warning; a damaged
schedule never fires a job twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
import yaml

from tests.conftest import cli, cli_process
from tests.simulator import PlatformSimulator
from tests.test_daemon import running_daemon, wait_for
from tests.test_isolation import GOOD_JOB, _groups, _jobs

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _state(root, name):
    return root / "var" / "state" / f"{name}.json"


def _damaged(root):
    return sorted(p.name for p in (root / "var" / "damaged").iterdir()
                  if not p.name.endswith(".why"))


def test_a_truncated_announcement_file_is_set_aside_and_the_others_go_out(root):
    with PlatformSimulator() as sim:
        robots = _groups(root, sim)
        first = cli(root, "announce", "第一条通知", "--to", "all", "--json").json()["id"]
        second = cli(root, "announce", "紧急：第二条通知", "--to", "all", "--urgent",
                     "--json").json()["id"]
        path = root / "var" / "active" / f"{first}.json"
        path.write_bytes(path.read_bytes()[:200])                  # torn by a failing disk
        r = cli_process(root, "run-once", "--json")
        assert r.code == 0, r.err
        assert r.json()["sent"] == 3
        assert f"announcement {first} is damaged" in r.err and "everything else goes on" in r.err
        assert all(robot.texts and "第二条通知" in robot.texts[0] for robot in robots.values())
        assert _damaged(root) == [n for n in _damaged(root) if n.startswith(f"{first}.json")]
        for args in (("queue", "list", "--all", "--json"), ("log", "--json"),
                     ("report", second, "--json")):
            assert cli_process(root, *args).code == 0, args
        status = cli_process(root, "status", "--json").json()
        [damaged] = status["damaged"]
        assert damaged["name"] == f"announcement {first}" and "JSON" in damaged["reason"]
        assert "damaged: announcement" in cli_process(root, "status").out
        check = cli_process(root, "check")
        assert check.code == 0 and f"announcement {first} was damaged" in check.err


WRONG_SHAPES = {
    "ratelimit": {"keys": {"robot": {"window": "sixty", "sends": ["now"]}}},
    "schedule": {"sorting": "fired yesterday"},
    "daemon": {"pid": "12", "heartbeat": 5},
    "runs": {"last_run": ["not", "an", "object"]},
}


@pytest.mark.parametrize("name", sorted(WRONG_SHAPES))
@pytest.mark.parametrize("damage", ["truncated", "wrong shape"])
def test_damaged_derived_state_is_rebuilt_with_a_warning(root, name, damage):
    with PlatformSimulator() as sim:
        robots = _groups(root, sim, n=2)
        _jobs(root, "jobs.yaml", [GOOD_JOB])
        assert cli_process(root, "run-once").code == 0          # every document exists now
        path = _state(root, name)
        if name == "daemon":
            path.write_text(json.dumps({"state": {"1": {
                "pid": 1, "host": "h", "heartbeat": "2026-11-22T08:00:00+08:00"}}}))
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[:-7])
        else:
            path.write_text(json.dumps({"state": {"1": WRONG_SHAPES[name]}}))
        assert cli_process(root, "announce", "损坏之后的通知", "--to", "all").code == 0
        r = cli_process(root, "run-once", "--json")
        assert r.code == 0, r.err
        assert f"state {name} is damaged" in r.err or name == "daemon"   # run-once never reads it
        for robot in robots.values():      # the job (again, if the minute turned), the notice
            assert sum("损坏之后的通知" in t for t in robot.texts) == 1
            assert len(robot.texts) >= 2
        status = cli_process(root, "status", "--json")
        assert status.code == 0, status.err
        assert [d["name"] for d in status.json()["damaged"]] == [f"state {name}"]
        assert not path.exists() or "fired yesterday" not in path.read_text()


def test_a_daemon_meets_wrong_shaped_state_and_goes_on(root):
    with PlatformSimulator() as sim:
        robots = _groups(root, sim, n=2)
        for name in ("ratelimit", "daemon", "runs"):
            path = _state(root, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"state": {"1": WRONG_SHAPES[name]}}))
        with running_daemon(root) as daemon:
            assert cli_process(root, "announce", "守护进程照常发送", "--to", "all").code == 0
            assert wait_for(lambda: all(r.texts for r in robots.values()), timeout=10)
            assert daemon.poll() is None
            named = {d["name"] for d in cli_process(root, "status", "--json").json()["damaged"]}
            assert named == {"state ratelimit", "state daemon", "state runs"}
            daemon.terminate()
            assert daemon.wait(timeout=10) == 0
            log = daemon.stderr.read()
        assert "state ratelimit is damaged" in log and "rebuilt" in log, log


def test_a_damaged_schedule_never_fires_a_job_twice(root, caplog):
    at = datetime(2026, 11, 22, 8, 0, 10, tzinfo=SHANGHAI)
    with PlatformSimulator() as sim:
        robots = _groups(root, sim, n=2)
        _jobs(root, "jobs.yaml", [{**GOOD_JOB, "cron": "0 8 * * *"}])
        with time_machine.travel(at - timedelta(minutes=5), tick=False):
            assert cli(root, "run-once").code == 0              # the job is known: nothing due
        with time_machine.travel(at, tick=False):
            assert cli(root, "run-once", "--json").json()["fired"] == ["sorting"]
        _state(root, "schedule").write_text("{\"state\": {\"1\": {\"sorting\": {\"la")
        with time_machine.travel(at + timedelta(seconds=30), tick=False):
            again = cli(root, "run-once", "--json")
        assert again.code == 0 and again.json()["fired"] == []   # 08:00 was fired already
        assert "state schedule rebuilt from what the store still knows" in caplog.text
        assert all(len(robot.texts) == 1 for robot in robots.values())
        record = yaml.safe_load(_state(root, "schedule").read_text())["state"]["1"]["sorting"]
        assert record["fired"].startswith("2026-11-22T08:00:00")
        with time_machine.travel(at + timedelta(days=1), tick=False):
            assert cli(root, "run-once", "--json").json()["fired"] == ["sorting"]   # and on
