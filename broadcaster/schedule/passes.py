"""One pass of the engine, shared by ``run-once`` and each daemon tick, in two steps.

- ``fire_jobs``: fire the schedules that are due (fetch content, render, queue).
  It needs no dispatch lock, and must not hold it: a slow feed never holds back
  an urgent notice to another group.
- ``dispatch_pass`` (the caller holds the dispatch lock): queue the welcomes whose
  gathering window has closed and the work orders' reminders, send every due
  delivery.

``record_run`` then keeps what the run did for ``status``: what fired, the
counts, and every problem (a job that failed, an invalid job, feed or group),
so one broken thing is named while everything else goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.delivery.result import PassResult
from broadcaster.timeparse import iso

if TYPE_CHECKING:
    from broadcaster.app import App
    from broadcaster.config.feeds import FeedsConfig
    from broadcaster.config.schedules import Job
    from broadcaster.delivery.dispatch import Dispatcher

RUNS_STATE = "runs"


def check_runs(doc: dict) -> None:
    """The ``runs`` document: ``{"retention_on": date, "last_run": {...}}``."""
    from broadcaster.store.records import check_shape  # start-up time: loaded when first used

    last = check_shape(doc, "runs", {"retention_on": str, "last_run": dict}).get("last_run")
    if last is not None:
        check_shape(last, "last_run", {"at": "time", "finished_at": "time", "fired": list,
                                       "errors": list, "problems": list, "sent": int})


@dataclass
class Run:
    """What one run (a ``run-once``, a daemon tick) did, for ``record_run``."""

    started: datetime
    fired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # broken config, failed jobs
    result: PassResult = field(default_factory=PassResult)

    @property
    def failed(self) -> bool:
        """Something needs the operator: ``run-once`` exits 1."""
        return bool(self.problems or self.result.errors)


def fire_jobs(app: App, run: Run, *, jobs: list[Job] | None = None,
              feeds: FeedsConfig | None = None) -> list[str]:
    """Fire the due jobs (no dispatch lock); their ids. ``jobs``/``feeds`` default to
    what is on disk (the daemon passes what it loaded). Problems go to ``run``."""
    from broadcaster.schedule import scheduler  # start-up time: loaded when first used

    fired = scheduler.fire_due(app, app.now(), jobs=jobs, feeds=feeds, problems=run.problems)
    run.fired.extend(fired)
    return fired


def dispatch_pass(app: App, dispatcher: Dispatcher, run: Run) -> PassResult:
    """The caller holds the dispatch lock: welcomes, reminders, then send what is due."""
    from broadcaster.sources import members  # start-up time: loaded when first used
    from broadcaster.tickets import reminders  # start-up time: loaded when first used

    now = app.now()
    members.flush_welcomes(app, now)
    ticket_errors = reminders.run(app, now)   # work orders: reminders, alerts, digests
    result = dispatcher.run()
    result.errors.extend(ticket_errors)
    run.result = run.result.then(result)
    return result


def record_run(app: App, run: Run) -> None:
    """Keep what ``run`` did for ``status``; once a day, apply retention."""
    now = run.started
    if "groups" in app.__dict__:     # loaded by this run: name the groups left out
        run.problems.extend(f"{p} (group left out until this is fixed)"
                            for p in app.groups.broken_problems()
                            if not any(str(p) in q for q in run.problems))
    with app.store.state(RUNS_STATE, check=check_runs) as st:
        retain = st.get("retention_on") != now.date().isoformat()
        st["retention_on"] = now.date().isoformat()
        st["last_run"] = {
            "at": iso(now),
            "finished_at": iso(app.now()),
            "fired": run.fired,
            **run.result.as_json(),
            "errors": [app.redact(e) for e in run.result.errors[-10:]],
            "problems": [app.redact(p) for p in run.problems[:20]],
        }
    if retain:
        apply_retention(app, now)
        purge_resident_messages(app, now)
        app.store.history.sum_past_month(now.date())   # stats reads it as one document


LOG_KEEPS = timedelta(days=180)   # the delivery log keeps at least this, whatever the retention


def apply_retention(app: App, now: datetime) -> int:
    """Once a day: delete delivery history older than ``defaults.retention`` (at least
    180 days), whole months at a time. Returns how many announcements went."""

    from broadcaster.timeparse import parse_duration  # start-up time: loaded when first used

    configured = getattr(app.groups.defaults, "retention", None)
    keep = max(parse_duration(configured, option="defaults.retention") if configured else LOG_KEEPS,
               LOG_KEEPS)
    gone = app.store.drop_before((now - keep).date())
    if gone:
        logging.getLogger(__name__).info("retention: %d announcements older than %s deleted",
                                         gone, (now - keep).date())
    return gone


def purge_resident_messages(app, now) -> int:
    """Delete resident messages older than ``defaults.retention`` (where ``serve`` ever stored any)."""
    from broadcaster.inbound import journal  # start-up time: loaded when first used

    if not app.store.journal().kept():
        return 0
    from broadcaster.timeparse import parse_duration  # start-up time: loaded when first used

    retention = parse_duration(app.groups.defaults.retention, option="defaults.retention")
    return journal.purge(app.store, now.astimezone(app.tz).date(), retention)
