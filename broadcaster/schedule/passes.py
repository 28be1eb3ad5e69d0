"""One pass of the engine, shared by ``run-once`` and each daemon tick.

Under the dispatch lock: fire the schedules that are due, queue the welcomes
whose gathering window has closed and the work orders' reminders, send every
due delivery, record the run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.delivery.dispatch import Dispatcher, PassResult
from broadcaster.timeparse import iso

if TYPE_CHECKING:
    from broadcaster.app import App
    from broadcaster.config.feeds import FeedsConfig
    from broadcaster.config.schedules import Job

RUNS_STATE = "runs"


def run_pass(
    app: App, dispatcher: Dispatcher, *, jobs: list[Job] | None = None,
    feeds: FeedsConfig | None = None,
) -> tuple[list[str], PassResult]:
    """The caller holds the dispatch lock.

    ``jobs`` and ``feeds`` default to what is on disk; the daemon passes the
    last config that loaded, so that a broken edit cannot stop it.
    """
    from broadcaster.schedule import scheduler
    from broadcaster.sources import members
    from broadcaster.tickets import reminders

    now = app.now()
    fired = scheduler.fire_due(app, now, jobs=jobs, feeds=feeds)
    members.flush_welcomes(app, now)
    ticket_errors = reminders.run(app, now)   # work orders: reminders, alerts, digests
    result = dispatcher.run()
    result.errors.extend(ticket_errors)
    with app.store.state(RUNS_STATE) as st:
        retain = st.get("retention_on") != now.date().isoformat()
        st["retention_on"] = now.date().isoformat()
        st["last_run"] = {
            "at": iso(now),
            "finished_at": iso(app.now()),
            "fired": fired,
            **result.as_json(),
            "errors": result.errors[-10:],
        }
    if retain:
        apply_retention(app, now)
        purge_resident_messages(app, now)
    return fired, result


LOG_KEEPS = timedelta(days=180)   # the delivery log keeps at least this, whatever the retention


def apply_retention(app: App, now: datetime) -> int:
    """Once a day: delete delivery history older than ``defaults.retention`` (at least
    180 days), whole months at a time. Returns how many announcements went."""
    import logging

    from broadcaster.timeparse import parse_duration

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
    from broadcaster.inbound import journal

    if not journal.directory(app.state_dir).is_dir():
        return 0
    from broadcaster.timeparse import parse_duration

    retention = parse_duration(app.groups.defaults.retention, option="defaults.retention")
    return journal.purge(app.state_dir, now.astimezone(app.tz).date(), retention)
