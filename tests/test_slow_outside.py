"""A slow feed or robot holds back nothing else, and SIGTERM still ends the daemon in 5 s.

Real processes against loopback servers: a feed that answers one byte a second
(it would take minutes), and a robot that takes 60 s to answer.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.conftest import REPO, clear_of_minute_turn, cli_process
from tests.simulator import PlatformSimulator
from tests.test_daemon import running_daemon, wait_for
from tests.test_isolation import _groups

pytestmark = pytest.mark.slow


@contextmanager
def trickling_feed():
    """A loopback feed server that sends one byte a second (asked for; never finishes)."""
    asked = threading.Event()
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.set()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                while not done.wait(1.0):
                    self.wfile.write(b" ")
                    self.wfile.flush()
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/feed.rss", asked
    finally:
        done.set()
        server.shutdown()
        server.server_close()


def _root(root, sim, feed_url, n=2):
    robots = _groups(root, sim, n)
    (root / "feeds" / "news.yaml").write_text(yaml.safe_dump(
        {"news": [{"id": "slow", "title": "慢的新闻源", "url": feed_url, "to": ["all"]}]},
        allow_unicode=True))
    (root / "schedules" / "news.yaml").write_text(yaml.safe_dump(
        {"jobs": [{"id": "news", "cron": "* * * * *", "content": "news", "to": ["all"]}]}))
    return robots


def test_a_slow_feed_holds_back_neither_an_urgent_notice_nor_sigterm(root):
    with PlatformSimulator() as sim, trickling_feed() as (url, asked):
        robots = _root(root, sim, url)
        with running_daemon(root) as daemon:
            assert asked.wait(20), "the daemon fired the news job"
            started = time.monotonic()
            assert cli_process(root, "announce", "紧急：燃气泄漏，请勿开火", "--to", "all",
                               "--urgent").code == 0
            assert wait_for(lambda: all(r.texts for r in robots.values()), timeout=10)
            assert time.monotonic() - started < 5, "the notice did not wait for the feed"
            stopping = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=10) == 0
            assert time.monotonic() - stopping < 5, "SIGTERM ended the daemon within 5 s"


def test_run_once_fetching_a_slow_feed_does_not_hold_the_dispatch_lock(root):
    with PlatformSimulator() as sim, trickling_feed() as (url, asked):
        robots = _root(root, sim, url)
        clear_of_minute_turn(margin=20)     # the second run-once must not fire the job again
        slow = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--root", str(root),
                                 "run-once"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert asked.wait(20), "the first run-once is reading the feed"
            assert cli_process(root, "announce", "紧急通知", "--to", "all", "--urgent").code == 0
            started = time.monotonic()
            second = cli_process(root, "run-once", "--json")   # cron's next minute
            assert second.code == 0, second.err                  # not 75: the lock is free
            assert second.json()["sent"] == 2
            assert time.monotonic() - started < 5
            assert all(len(r.texts) == 1 and "紧急通知" in r.texts[0] for r in robots.values())
            assert slow.poll() is None, "the first one is still waiting for the feed"
        finally:
            slow.kill()
            slow.wait()


def test_sigterm_with_a_robot_that_never_answers_ends_the_daemon_within_5_s(root):
    with PlatformSimulator() as sim:
        quick = sim.add_robot("webhook", key="quick")
        stuck = sim.add_robot("webhook", key="stuck", latency=60.0)
        (root / "groups.yaml").write_text(yaml.safe_dump({"groups": [
            {"id": "quick", "name": "快群", "tags": [], "channel": quick.config()},
            {"id": "stuck", "name": "慢群", "tags": [], "channel": stuck.config()}]},
            allow_unicode=True))
        ann = cli_process(root, "announce", "停电通知", "--to", "all", "--json").json()
        with running_daemon(root) as daemon:
            assert wait_for(lambda: quick.texts and len(sim.received()) >= 1, timeout=10)
            time.sleep(0.5)       # the stuck send is in flight
            stopping = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=15) == 0
            elapsed = time.monotonic() - stopping
            log = daemon.stderr.read()
        assert elapsed < 5, f"SIGTERM took {elapsed:.1f} s"
        assert "abandoned" in log or "still in flight" in log
        report = cli_process(root, "report", ann["id"], "--json").json()
        assert report["sent"] == 1 and report["pending"] == 1    # the stuck one goes next time
