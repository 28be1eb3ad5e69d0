"""Faults on the PostgreSQL store, with real processes and a real server.

- two dispatchers share one 2,000-group fan-out and one is SIGKILLed mid-way:
  every group gets the message, repeats at most the killed one's sends in flight;
- the server is stopped for 10 s in the middle of a pass: the dispatchers wait,
  reconnect and carry on; nothing is lost and nothing is sent twice;
- 20 staff terminals announce at once while two dispatchers run: nothing lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import REPO, cli_process
from tests.simulator import PlatformSimulator
from tests.test_crash_concurrency import _root_with

pytestmark = pytest.mark.slow

WORKERS = 64        # the dispatcher's send threads: its most sends in flight


def _env(url: str, **more: str) -> dict:
    return {**os.environ, "BROADCASTER_DATABASE_URL": url, **more}


def _dispatcher(root, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root),
                             "run-once", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def _announce(root, env, text: str) -> str:
    ann = cli_process(root, "announce", text, "--to", "all", "--json", env=env)
    assert ann.code == 0, ann.err
    return ann.json()["id"]


def _until_done(root, env, ann_id, rounds: int = 6) -> dict:
    """``run-once`` until the announcement is done (a dead session's claims return after
    the grace); its report."""
    for _ in range(rounds):
        report = cli_process(root, "report", ann_id, "--json", env=env)
        assert report.code == 0, report.err
        if report.json()["status"] == "done":
            return report.json()
        again = cli_process(root, "run-once", "--json", env=env)
        assert again.code == 0, again.err
        time.sleep(0.5)
    raise AssertionError(f"not done after {rounds} passes: {report.json()}")


def test_two_dispatchers_one_killed_every_group_gets_it(root, pg_url):
    env = _env(pg_url, BROADCASTER_CLAIM_GRACE="1")
    with PlatformSimulator(latency=(0.01, 0.03)) as sim:
        robots = _root_with(root, sim, 2000)
        text = "两台机器同时发送的停水通知"
        ann_id = _announce(root, env, text)
        doomed, survivor = _dispatcher(root, env), _dispatcher(root, env)
        _wait_for(lambda: len(sim.received()) >= 700)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        killed_at = len(sim.received())
        _, err = survivor.communicate(timeout=120)
        assert survivor.returncode == 0, err
        assert killed_at < 2000, "killed mid-way"
        report = _until_done(root, env, ann_id)
        time.sleep(0.2)
        counts = {gid: Counter(r.texts)[text] for gid, r in robots.items()}
        missed = [g for g, c in counts.items() if c == 0]
        repeats = sum(c - 1 for c in counts.values() if c > 1)
        assert missed == []
        assert repeats <= WORKERS, f"{repeats} repeats for at most {WORKERS} sends in flight"
        assert report["sent"] == 2000
        print(f"killed after {killed_at} received; {repeats} repeat(s)")


def test_the_database_stopped_for_ten_seconds_mid_pass_loses_and_doubles_nothing(
        root, pg_server, pg_url):
    env = _env(pg_url)
    with PlatformSimulator(latency=0.05) as sim:
        robots = _root_with(root, sim, 600)
        text = "数据库重启期间的通知"
        ann_id = _announce(root, env, text)
        first, second = _dispatcher(root, env), _dispatcher(root, env)
        _wait_for(lambda: len(sim.received()) >= 150)
        pg_server.stop()
        stopped_at = len(sim.received())
        time.sleep(10)
        pg_server.start()
        for proc in (first, second):
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        assert stopped_at < 600, "the server was stopped mid-pass"
        report = cli_process(root, "report", ann_id, "--json", env=env).json()
        counts = Counter(gid for gid, r in robots.items() for t in r.texts if t == text)
        assert sorted(counts) == sorted(robots), "every group got it"
        assert max(counts.values()) == 1, "nothing was sent twice"
        assert report["sent"] == 600 and report["status"] == "done"


def test_twenty_terminals_announcing_at_once_lose_nothing(root, pg_url):
    env = _env(pg_url)
    with PlatformSimulator() as sim:
        robots = _root_with(root, sim, 5)
        loops = [subprocess.Popen(
            [sys.executable, "-c",
             "import subprocess, sys, time\n"
             "end = time.monotonic() + 3\n"
             "while time.monotonic() < end:\n"
             f"    subprocess.run([sys.executable, {str(REPO / 'main.py')!r}, '--root', "
             f"{str(root)!r}, 'run-once'], capture_output=True)\n"], env=env) for _ in range(2)]

        def announce(i):
            return cli_process(root, "announce", f"第{i}号通知", "--to", "all", "--json", env=env)

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(announce, range(20)))
        for loop in loops:
            loop.wait(timeout=60)
        assert all(r.code == 0 for r in results), [r.err for r in results if r.code]
        ids = {r.json()["id"] for r in results}
        assert len(ids) == 20
        final = cli_process(root, "run-once", "--json", env=env)
        assert final.code == 0, final.err
        listed = cli_process(root, "queue", "list", "--all", "--json", env=env).json()
        assert {a["id"] for a in listed} == ids
        for robot in robots.values():
            assert sorted(robot.texts) == sorted(f"第{i}号通知" for i in range(20))


def test_two_daemons_on_one_queue_send_each_notice_once(root, pg_url):
    """Two daemons (two machines) and staff announcing: each group gets each notice once,
    and both stop cleanly on SIGTERM."""
    env = _env(pg_url)
    with PlatformSimulator(latency=0.01) as sim:
        robots = _root_with(root, sim, 40)
        daemons = [subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root),
                                     "daemon"], env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            texts = [f"第{i}号双机通知" for i in range(3)]
            for text in texts:
                assert cli_process(root, "announce", text, "--to", "all", env=env).code == 0
            _wait_for(lambda: all(len(r.texts) >= 3 for r in robots.values()), timeout=60)
            for daemon in daemons:
                daemon.send_signal(signal.SIGTERM)
            for daemon in daemons:
                assert daemon.wait(timeout=30) == 0, daemon.stderr.read()[-2000:]
        finally:
            for daemon in daemons:
                daemon.kill()
        for robot in robots.values():
            assert sorted(robot.texts) == sorted(texts)
        assert not (root / "var" / "active").exists()
