"""The daemon: schedules and dispatch until SIGTERM/SIGINT.

Two threads. The main one dispatches: each tick is one dispatch pass
(``broadcaster.schedule.passes``) under the dispatch lock, so a ``run-once``
from cron can run beside it safely; between ticks it sleeps until the next due
delivery, the queue changes (``announce``, or a job queuing its content), or the
heartbeat interval, whichever comes first. The content thread fires the
schedules when they are due (APScheduler wakes it) and at every heartbeat,
without the dispatch lock: a slow feed never holds back an urgent notice.

SIGHUP reloads the config: an invalid job, feed or group is left out and
logged, the rest is reloaded; a groups.yaml that cannot be used at all keeps
the old config running. SIGTERM lets in-flight sends finish for up to
``STOP_GRACE`` seconds, records them, and exits 0 within a few seconds: a send
or a feed still hanging then is abandoned (its result was not recorded, so the
next start sends it again: at most the sends in flight repeat).
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
from broadcaster.schedule.passes import Run, dispatch_pass, fire_jobs, record_run
from broadcaster.timeparse import iso

log = logging.getLogger("broadcaster.schedule.daemon")

HEARTBEAT_EVERY = 30.0     # seconds; `status` calls a daemon dead after 3 missed beats
TELEGRAM_POLL_EVERY = 20.0
QUEUE_POLL = 1.0           # seconds between looks at the queue directory
STATE_NAME = "daemon"
HEARTBEAT_SHAPE = {"pid": int, "host": str, "started_at": "time", "heartbeat": "time",
                   "stopped_at": "time"}
STORE_RETRY = 10.0         # seconds before a pass that could not record is tried again
STOP_GRACE = 3.0           # seconds in-flight sends may take after SIGTERM


def validate(app: App) -> list[str]:
    """Load everything a daemon needs; the problems of what is broken (left out).

    Raises BroadcasterError only when nothing can run: groups.yaml itself is unusable.
    """

    problems: list[str] = [f"{p} (group left out until this is fixed)"
                           for p in app.groups.broken_problems()]
    problems.extend(str(p) for p in app.templates.check(app.groups.groups))
    return problems   # invalid jobs and feeds: the ScheduleRunner leaves them out and says so


def check_heartbeat(doc: dict) -> None:
    """The daemon's heartbeat document (``BadRecord`` if it has another shape)."""
    from broadcaster.store.records import check_shape  # start-up time: loaded when first used

    check_shape(doc, "daemon", HEARTBEAT_SHAPE)


class Daemon:
    def __init__(self, app: App, *, progress=None, problems: list[str] | None = None):
        self.app = app
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.content_due = threading.Event()
        self.reload_requested = threading.Event()
        self.progress = progress
        self.started_at = app.now()
        self.problems = list(problems or [])     # what the loaded config leaves out
        self._runner = None
        self._last_poll = 0.0
        self._content: threading.Thread | None = None
        self._content_lock = threading.Lock()
        self._content_runs: list[Run] = []        # fired by the content thread, to record

    # -- signals ------------------------------------------------------------------
    def install_signals(self) -> None:
        def on_stop(signum, _frame):
            log.info("received %s: finishing in-flight sends (up to %.0f s), then exiting",
                     signal.Signals(signum).name, STOP_GRACE)
            self.stop.set()
            self.wake.set()
            self.content_due.set()

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
        self._content = threading.Thread(target=self._content_loop, name="content", daemon=True)
        self._content.start()
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

    def abandoned(self, grace: float = 0.5) -> list[str]:
        """Threads still busy ``grace`` seconds after the stop that the interpreter's exit
        would wait for (a hanging send or feed: non-daemon threads and thread-pool
        workers, which it joins even when they are daemons): the caller exits anyway."""
        from concurrent.futures import thread as pool_threads  # start-up time: loaded when first used

        pools = set(getattr(pool_threads, "_threads_queues", {}))
        blocking = [t for t in threading.enumerate() if t is not threading.main_thread()
                    and (not t.daemon or t in pools)]
        deadline = time.monotonic() + grace
        for t in blocking:
            t.join(max(0.0, deadline - time.monotonic()))
        return [t.name for t in blocking if t.is_alive()]

    def _tick(self) -> float:
        """One dispatch pass; returns how long to sleep before the next one."""
        self._heartbeat()
        run = Run(self.app.now())
        try:
            with self.app.store.dispatch_lock(wait=HEARTBEAT_EVERY):
                self._poll_telegram()
                dispatcher = Dispatcher(self.app, stop=self.stop, progress=self.progress,
                                        stop_grace=STOP_GRACE)
                dispatch_pass(self.app, dispatcher, run)
        except LockHeld:
            log.info("dispatch lock busy (a run-once is sending); trying again")
            return 1.0
        except BroadcasterError as exc:    # a full disk, say: stay up, look again soon
            log.error("%s", self.app.redact(exc))
            return STORE_RETRY
        result = run.result
        with self._content_lock:
            for done in self._content_runs:
                run.fired.extend(done.fired)
                run.problems.extend(done.problems)
            self._content_runs.clear()
        run.problems.extend(p for p in self.problems if p not in run.problems)
        try:
            record_run(self.app, run)
        except BroadcasterError as exc:
            log.error("%s", self.app.redact(exc))
        if run.fired or result.sent or result.failed:
            log.info("pass: fired %s, %s", run.fired or "-", result.summary())
        for err in result.errors:
            log.error("%s", err)
        wait = HEARTBEAT_EVERY
        if result.next_due is not None:
            wait = min(wait, max(0.2, (result.next_due - self.app.now()).total_seconds()))
        return wait

    # -- content (its own thread: never under the dispatch lock) ------------------
    def _content_loop(self) -> None:
        while not self.stop.is_set():
            self.content_due.wait(HEARTBEAT_EVERY)
            self.content_due.clear()
            if self.stop.is_set():
                return
            runner = self._runner
            run = Run(self.app.now())
            try:
                fire_jobs(self.app, run, jobs=runner.jobs if runner else None,
                          feeds=runner.feeds if runner else None)
            except BroadcasterError as exc:     # logged below, with the jobs' problems
                run.problems.append(self.app.redact(exc))
            except Exception:   # a bug in a content kind must not stop the schedules
                log.exception("firing the schedules failed")
                continue
            for problem in run.problems:    # the daemon's log is where its operator reads them
                log.error("%s", problem)
            if run.fired or run.problems:
                with self._content_lock:
                    self._content_runs.append(run)
                self.wake.set()     # record it (and send what it queued) now

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
        from broadcaster.sources import members  # start-up time: loaded when first used

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
        from broadcaster.schedule.scheduler import ScheduleRunner  # start-up time: loaded when first used

        self._runner = ScheduleRunner(self.app, on_due=self.content_due.set)
        self.problems.extend(self._runner.start())
        self.content_due.set()      # a first look: times missed while nothing ran

    def _stop_runner(self) -> None:
        if self._runner is not None:
            self._runner.shutdown()
            self._runner = None

    def _reload(self) -> None:
        candidate = App(self.app.root, self.app.state_dir)
        candidate.on_warning = self.app.on_warning   # its problems are logged below
        try:
            problems = validate(candidate)
        except BroadcasterError as exc:
            log.error("reload refused, the running config stays in force:\n%s",
                      candidate.redact(exc))
            return
        for p in problems:
            log.error("%s", candidate.redact(p))
        self._stop_runner()
        self.app, self.problems = candidate, problems
        self._start_runner()
        log.info("config reloaded%s", f" ({len(self.problems)} problem(s): the rest runs)"
                 if self.problems else "")

    # -- heartbeat ----------------------------------------------------------------
    def _heartbeat(self, stopped: bool = False) -> None:
        """Write the heartbeat; a store that cannot (a full disk) is logged, never fatal."""
        now: datetime = self.app.now()
        try:
            with self.app.store.state(STATE_NAME, check=check_heartbeat) as st:
                st.update(pid=os.getpid(), host=socket.gethostname(),
                          started_at=iso(self.started_at), heartbeat=iso(now),
                          stopped_at=iso(now) if stopped else None)
        except BroadcasterError as exc:
            log.error("heartbeat not written: %s", self.app.redact(exc))
