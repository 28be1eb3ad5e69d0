"""The daemon as a real process: delivery, heartbeat, SIGTERM mid-fan-out, SIGHUP reload."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager

import pytest

from tests.conftest import REPO, cli_process
from tests.simulator import PlatformSimulator
from tests.test_crash_concurrency import _root_with

pytestmark = pytest.mark.slow


def start_daemon(root):
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root), "daemon"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def status(root):
    return json.loads(cli_process(root, "status", "--json").out)


@contextmanager
def running_daemon(root):
    """A daemon process that has written its first heartbeat; killed if a test fails."""
    daemon = start_daemon(root)
    try:
        assert wait_for(lambda: status(root)["daemon"]["state"] == "running")
        yield daemon
    finally:
        daemon.kill()


def test_daemon_delivers_new_announcements_promptly_and_stops_cleanly(root):
    with PlatformSimulator() as sim:
        robots = _root_with(root, sim, 3)
        with running_daemon(root) as daemon:
            assert cli_process(root, "announce", "今晚8点停电", "--to", "all").code == 0
            # the queue directory changing wakes the daemon: no 30 s heartbeat wait
            assert wait_for(lambda: all(r.texts for r in robots.values()), timeout=10)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
        assert status(root)["daemon"]["state"] == "stopped"
        assert [len(r.texts) for r in robots.values()] == [1, 1, 1]
        log = daemon.stderr.read()
        assert "daemon started" in log
        for robot in robots.values():  # webhook URLs (with their keys) never reach the log
            assert robot.config()["url"] not in log


def test_sigterm_mid_fan_out_finishes_in_flight_and_leaves_the_rest_pending(root):
    with PlatformSimulator(latency=0.5) as sim:
        robots = _root_with(root, sim, 300)
        ann = json.loads(cli_process(root, "announce", "紧急通知", "--to", "all", "--json").out)
        daemon = start_daemon(root)
        try:
            assert wait_for(lambda: len(sim.received()) >= 64)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0, daemon.stderr.read()
        finally:
            daemon.kill()
        time.sleep(0.3)
        got = Counter(m.key for m in sim.received())
        report = json.loads(cli_process(root, "report", ann["id"], "--json").out)
        assert 0 < report["sent"] < 300 and report["pending"] == 300 - report["sent"]
        # what reached the platform was recorded as sent: nothing in flight was lost track of
        assert report["sent"] == len(got)
        assert cli_process(root, "run-once", "--json").code == 0
        assert all(len(r.messages) == 1 for r in robots.values())


def test_sighup_with_a_broken_job_leaves_it_out_and_reloads_the_rest(root):
    with PlatformSimulator() as sim:
        robots = _root_with(root, sim, 2)
        with running_daemon(root) as daemon:
            (root / "schedules" / "broken.yaml").write_text(
                "jobs:\n  - id: bad\n    cron: \"61 * * * *\"\n    content: news\n    to: [all]\n")
            daemon.send_signal(signal.SIGHUP)
            time.sleep(1.5)
            assert cli_process(root, "announce", "编辑出错后的通知", "--to", "all").code == 0
            assert wait_for(lambda: all(r.texts for r in robots.values()), timeout=10)
            assert daemon.poll() is None, "the daemon is still running"
            problems = status(root)["problems"]
            assert any("broken.yaml:3" in p for p in problems), problems
            (root / "groups.yaml").write_text("groups: [\n")      # unusable as a whole
            daemon.send_signal(signal.SIGHUP)
            time.sleep(1.5)
            assert daemon.poll() is None, "the old config keeps running"
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
            log = daemon.stderr.read()
        assert "broken.yaml:3" in log and "job left out" in log
        assert "reload refused" in log and "groups.yaml" in log


def test_the_daemon_logs_a_jobs_problem_and_failure_once(root):
    from tests.test_isolation import GOOD_JOB, _job_with_a_problem, _jobs

    with PlatformSimulator() as sim:
        _root_with(root, sim, 1)
        problem = _job_with_a_problem(root)
        _jobs(root, "broken.yaml", [{**GOOD_JOB, "id": "broken-template",
                                     "template": "sorting_reminder_gone"}])
        with running_daemon(root) as daemon:
            assert wait_for(lambda: len(status(root)["problems"]) >= 2), status(root)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=30) == 0
            log = daemon.stderr.read()
    # a `* * * * *` job fires again if the test spans a minute's change, and SIGTERM may
    # end that second run before the daemon logs what it found: once per whole run
    firings = log.count("job news fired for")
    assert firings >= 1, log
    assert max(1, firings - 1) <= log.count(problem) <= firings, log
    assert max(1, firings - 1) <= log.count("job broken-template") <= firings, log
    assert "ERROR" in next(line for line in log.splitlines() if problem in line)


def test_a_store_error_while_firing_is_logged_once_and_recorded(root, monkeypatch, caplog):
    """The content thread meets a store error (a full disk, say): one log line, and the
    problem goes on to the pass that records it for `status`."""
    from broadcaster.app import App
    from broadcaster.errors import BroadcasterError
    from broadcaster.schedule import daemon as daemon_module

    d = daemon_module.Daemon(App(root))

    def fire(app, run, **_):
        d.stop.set()                            # this one round only
        raise BroadcasterError("no space left in var/state")

    monkeypatch.setattr(daemon_module, "fire_jobs", fire)
    d.content_due.set()
    d._content_loop()
    assert caplog.text.count("no space left in var/state") == 1, caplog.text
    assert [r.problems for r in d._content_runs] == [["no space left in var/state"]]
