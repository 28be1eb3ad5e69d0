"""Real processes: SIGKILL mid-fan-out, and many announcers racing a dispatcher."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.conftest import REPO, cli_process, dispatch_lock_held
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


def _sent_rows(root, ann_id) -> set[str]:
    """Groups whose delivery the store holds as sent (journal included), as staff would see."""
    shown = cli_process(root, "queue", "show", ann_id, "--json")
    assert shown.code == 0, shown.err
    return {d["group"] for d in shown.json()["deliveries"] if d["status"] == "sent"}


def _run_once_killed_after(root, sim, received: int) -> None:
    """Start ``run-once`` and SIGKILL it once the platform holds ``received`` messages."""
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root),
                             "run-once"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(sim.received()) >= received:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)  # requests the dead process had sent finish on the platform's side


@pytest.mark.parametrize("trial", range(4))
def test_sigkill_at_a_random_point_repeats_at_most_the_sends_in_flight(root, trial):
    """500 groups over a 20-50 ms platform, killed at a random point, then run again.

    No group misses the message; repeats are at most the pool size (64); a group
    the store held as sent at the kill is never sent again.
    """
    rng = random.Random(trial)
    with PlatformSimulator(latency=(0.02, 0.05)) as sim:
        robots = _root_with(root, sim, 500)
        text = f"停电检修通知（第{trial}次演练）"
        ann = cli_process(root, "announce", text, "--to", "all", "--json")
        assert ann.code == 0, ann.err
        ann_id = ann.json()["id"]
        _run_once_killed_after(root, sim, rng.randint(0, 499))
        recorded = _sent_rows(root, ann_id)
        again = cli_process(root, "run-once", "--json")
        assert again.code == 0, again.err
        counts = {gid: Counter(r.texts)[text] for gid, r in robots.items()}
        missed = [g for g, c in counts.items() if c == 0]
        repeats = sum(c - 1 for c in counts.values() if c > 1)
        assert missed == []
        assert repeats <= 64, f"{repeats} repeats for at most 64 sends in flight"
        assert all(counts[g] == 1 for g in recorded), "a send recorded as done was repeated"
        assert not list((root / "var" / "journal").glob("*.jsonl")), "journals folded"
        report = cli_process(root, "report", ann_id, "--json").json()
        assert report["sent"] == 500 and report["status"] == "done"


def test_a_multi_part_message_killed_midway_resumes_at_its_first_unsent_part(root):
    with PlatformSimulator() as sim:
        robot = sim.add_robot("wecom", key="long", latency=0.25)
        (root / "groups.yaml").write_text(yaml.safe_dump({"groups": [
            {"id": "g1", "name": "长消息群", "tags": [], "channel": robot.config()}]}))
        paragraph = "停水期间请注意储水，关好水龙头。" * 60   # ~2.9 KB: one per 4 KB WeCom message
        text = "\n\n".join(f"第{i}段：{paragraph}" for i in range(1, 9))
        (root / "notice.md").write_text(text, encoding="utf-8")
        ann = cli_process(root, "announce", "--file", str(root / "notice.md"), "--to", "all",
                          "--json")
        assert ann.code == 0, ann.err
        _run_once_killed_after(root, sim, 3)
        assert cli_process(root, "run-once", "--json").code == 0
        numbers = [re.match(r"\((\d+)/(\d+)\)", t).groups() for t in robot.texts]
        total = int(numbers[0][1])
        assert total == 8, f"the message splits into 8 parts, not {total}"
        sent = [int(i) for i, _ in numbers]
        assert sorted(set(sent)) == list(range(1, total + 1)), "every part arrived"
        assert len(sent) <= total + 1, f"at most the part in flight repeats: {sent}"
        assert sent == sorted(sent), f"parts in order, resumed where it stopped: {sent}"


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
        with dispatch_lock_held(root / "var"):
            r = cli_process(root, "run-once", "--json")
        assert r.code == 75 and len(r.err.strip().splitlines()) == 1
        assert "dispatch lock held" in r.json()["error"]["message"]
