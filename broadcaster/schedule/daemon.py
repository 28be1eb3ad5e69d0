"""The daemon: schedules and dispatch until SIGTERM/SIGINT.

Each tick runs one pass (``broadcaster.schedule.passes``) under the dispatch lock, so a
``run-once`` from cron can run beside it safely. Between ticks it sleeps until
the next due delivery, the next schedule time (APScheduler wakes it), or the
heartbeat interval, whichever comes first. SIGHUP reloads the config: a broken
edit keeps the old config running and says why. SIGTERM lets in-flight sends
finish (each has a timeout), records them, and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import datetime

from broadcaster.app import App
from broadcaster.delivery.dispatch import Dispatcher
from broadcaster.errors import BroadcasterError, LockHeld
from broadcaster.schedule.passes import run_pass
from broadcaster.timeparse import iso

log = logging.getLogger("broadcaster.schedule.daemon")

HEARTBEAT_EVERY = 30.0     # seconds; `status` calls a daemon dead after 3 missed beats
TELEGRAM_POLL_EVERY = 20.0
QUEUE_POLL = 1.0           # seconds between looks at the queue directory
STATE_NAME = "daemon"


def validate(app: App) -> None:
    """Load everything a daemon needs; raise BroadcasterError if anything is broken."""
    from broadcaster.config.feeds import load_feeds
    from broadcaster.schedule import scheduler

    _ = app.groups
    load_feeds(app.root)
    scheduler.next_fire_times(app, app.now())
    problems = app.templates.check(app.groups.groups)
    if problems:
        from broadcaster.errors import ConfigError

        raise ConfigError(problems)


class Daemon:
    def __init__(self, app: App, *, progress=None):
        self.app = app
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.reload_requested = threading.Event()
        self.progress = progress
        self.started_at = app.now()
        self._runner = None
        self._last_poll = 0.0

    # -- signals ------------------------------------------------------------------
    def install_signals(self) -> None:
        def on_stop(signum, _frame):
            log.info("received %s: finishing in-flight sends, then exiting",
                     signal.Signals(signum).name)
            self.stop.set()
            self.wake.set()

        def on_hup(_signum, _frame):
            self.reload_requested.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    # -- main loop ------------------------------------------------------------------
    def run(self) -> int:
        log.info("daemon started (pid %d, root %s, state %s)", os.getpid(), self.app.root,
                 self.app.state_dir)
        self._start_runner()
        try:
            while not self.stop.is_set():
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self._reload()
                wait = self._tick()
                self._sleep(wait)
                self.wake.clear()
        finally:
            self._stop_runner()
            self._heartbeat(stopped=True)
            log.info("daemon stopped")
        return 0

    def _tick(self) -> float:
        """One pass; returns how long to sleep before the next one."""
        self._heartbeat()
        try:
            with self.app.store.dispatch_lock(wait=HEARTBEAT_EVERY):
                self._poll_telegram()
                dispatcher = Dispatcher(self.app, stop=self.stop, progress=self.progress)
                runner = self._runner
                fired, result = run_pass(self.app, dispatcher,
                                         jobs=runner.jobs if runner else None,
                                         feeds=runner.feeds if runner else None)
        except LockHeld:
            log.info("dispatch lock busy (a run-once is sending); trying again")
            return 1.0
        except BroadcasterError as exc:
            log.error("%s", self.app.redact(exc))
            return HEARTBEAT_EVERY
        if fired or result.sent or result.failed:
            log.info("pass: fired %s, %s", fired or "-", result.summary())
        for err in result.errors:
            log.error("%s", err)
        wait = HEARTBEAT_EVERY
        if result.next_due is not None:
            wait = min(wait, max(0.2, (result.next_due - self.app.now()).total_seconds()))
        return wait

    def _sleep(self, seconds: float) -> None:
        """Until ``seconds`` pass, a signal or a schedule wakes us, or the queue changes.

        ``announce`` from another process renames a file into ``active/``, which
        changes the directory's mtime: a staff notice goes out within a second.
        """
        deadline = time.monotonic() + seconds
        mark = self._queue_mark()
        while not self.wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.wait(min(QUEUE_POLL, left))
            if self._queue_mark() != mark:
                return

    def _queue_mark(self) -> object:
        return self.app.store.queue_mark()

    def _poll_telegram(self) -> None:
        from broadcaster.sources import members

        now = self.app.now().timestamp()
        if now - self._last_poll < TELEGRAM_POLL_EVERY:
            return
        self._last_poll = now
        try:
            members.poll_telegram(self.app)
        except BroadcasterError as exc:
            log.warning("telegram poll: %s", self.app.redact(exc))

    # -- schedules --------------------------------------------------------------
    def _start_runner(self) -> None:
        from broadcaster.schedule.scheduler import ScheduleRunner

        self._runner = ScheduleRunner(self.app, on_due=self.wake.set)
        self._runner.start()

    def _stop_runner(self) -> None:
        if self._runner is not None:
            self._runner.shutdown()
            self._runner = None

    def _reload(self) -> None:
        candidate = App(self.app.root, self.app.state_dir)
        try:
            validate(candidate)
        except BroadcasterError as exc:
            log.error("reload refused, the running config stays in force:\n%s",
                      candidate.redact(exc))
            return
        self._stop_runner()
        self.app = candidate
        self._start_runner()
        log.info("config reloaded")

    # -- heartbeat ----------------------------------------------------------------
    def _heartbeat(self, stopped: bool = False) -> None:
        now: datetime = self.app.now()
        with self.app.store.state(STATE_NAME) as st:
            st.update(pid=os.getpid(), host=socket.gethostname(),
                      started_at=iso(self.started_at), heartbeat=iso(now),
                      stopped_at=iso(now) if stopped else None)
