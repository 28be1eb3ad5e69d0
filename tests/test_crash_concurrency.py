"""Real processes: SIGKILL mid-fan-out, and many announcers racing a dispatcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.conftest import REPO, cli_process
from tests.simulator import PlatformSimulator

pytestmark = pytest.mark.slow


def _root_with(root, sim, n, platform="webhook", **robot_options):
    robots = {}
    groups = []
    for i in range(n):
        gid = f"g{i:03d}"
        robot = sim.add_robot(platform, key=f"k{i:03d}", **robot_options)
        robots[gid] = robot
        groups.append({"id": gid, "name": f"第{i}网格群", "tags": ["kind:grid"],
                       "channel": robot.config()})
    (root / "groups.yaml").write_text(yaml.safe_dump({"groups": groups}, allow_unicode=True))
    return robots


def _rows(root, ann_id):
    path = next((root / "var").rglob(f"{ann_id}.json"))
    data = json.loads(path.read_text())
    return {row["group"]: row for row in data["deliveries"].values()}


def test_sigkill_mid_fan_out_then_restart_delivers_each_group_once(root):
    with PlatformSimulator(latency=0.2) as sim:
        robots = _root_with(root, sim, 600)
        ann = cli_process(root, "announce", "紧急通知：今晚停电检修", "--to", "all", "--json")
        assert ann.code == 0, ann.err
        ann_id = json.loads(ann.out)["id"]
        proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root),
                                 "run-once"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill once some sends are recorded, not all
            try:
                if any(r["status"] == "sent" for r in _rows(root, ann_id).values()):
                    break
            except (StopIteration, ValueError):  # between writes
                pass
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)  # requests the dead process had sent finish on the platform's side
        at_kill = _rows(root, ann_id)
        recorded = {g for g, row in at_kill.items() if row["status"] == "sent"}
        received_at_kill = Counter(m.key for m in sim.received())
        assert 0 < len(received_at_kill) < 600, "the kill must land mid-fan-out"
        assert recorded, "some sends were recorded before the kill"
        again = cli_process(root, "run-once", "--json")
        assert again.code == 0, again.err
        counts = {gid: len(r.messages) for gid, r in robots.items()}
        assert all(c >= 1 for c in counts.values()), "every group has the message"
        assert all(counts[g] == 1 for g in recorded), "a recorded send is never repeated"
        repeats = {g for g, c in counts.items() if c > 1}
        # only sends in flight at the kill may repeat: they had reached the platform
        reached = {gid for gid, r in robots.items() if received_at_kill[r.key]}
        assert repeats <= reached
        report = json.loads(cli_process(root, "report", ann_id, "--json").out)
        assert report["sent"] == 600 and report["status"] == "done"


def test_twenty_announcers_racing_a_dispatcher_lose_nothing(root):
    with PlatformSimulator() as sim:
        robots = _root_with(root, sim, 5)
        env = {**os.environ}
        stop = time.monotonic() + 60
        dispatcher = subprocess.Popen(
            [sys.executable, "-c",
             "import subprocess, sys, time\n"
             f"end = time.monotonic() + 8\n"
             "while time.monotonic() < end:\n"
             f"    subprocess.run([sys.executable, {str(REPO / 'main.py')!r}, '--root', "
             f"{str(root)!r}, 'run-once'], capture_output=True)\n"],
            env=env)

        def announce(i):
            return cli_process(root, "announce", f"第{i}号通知", "--to", "all", "--json")

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(announce, range(20)))
        dispatcher.wait(timeout=max(1, stop - time.monotonic()))
        assert all(r.code == 0 for r in results), [r.err for r in results if r.code]
        ids = {json.loads(r.out)["id"] for r in results}
        assert len(ids) == 20
        final = cli_process(root, "run-once", "--json")
        assert final.code in (0, 75)
        if final.code == 75:
            time.sleep(1)
            final = cli_process(root, "run-once", "--json")
        for robot in robots.values():
            texts = Counter(robot.texts)
            assert sorted(texts) == sorted(f"第{i}号通知" for i in range(20))
            assert set(texts.values()) == {1}
        listed = json.loads(cli_process(root, "queue", "list", "--all", "--json").out)
        assert {a["id"] for a in listed} == ids and all(a["status"] == "done" for a in listed)


def test_run_once_exits_75_when_the_lock_is_held(root):
    with PlatformSimulator() as sim:
        _root_with(root, sim, 1)
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time\n"
             "from broadcaster.store import Store\n"
             f"s = Store({str(root / 'var')!r})\n"
             "with s.dispatch_lock():\n"
             "    print('held', flush=True)\n"
             "    time.sleep(20)\n"],
            stdout=subprocess.PIPE, text=True, cwd=REPO)
        try:
            assert holder.stdout.readline().strip() == "held"
            r = cli_process(root, "run-once", "--json")
            assert r.code == 75 and len(r.err.strip().splitlines()) == 1
            assert "dispatch lock held" in r.json()["error"]["message"]
        finally:
            holder.kill()
            holder.wait()
