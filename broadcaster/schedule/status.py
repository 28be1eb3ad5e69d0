"""``status``: is the daemon alive, how deep is the queue, what failed lately.

Besides deliveries, it names what an operator must fix: the problems of the
last run (an invalid job, feed or group, left out), the jobs whose last firing
failed (until they next succeed) and the state files set aside as damaged.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.queue import deliverylog, outbox
from broadcaster.schedule.daemon import HEARTBEAT_EVERY, check_heartbeat
from broadcaster.schedule.daemon import STATE_NAME as DAEMON_STATE
from broadcaster.schedule.passes import RUNS_STATE, check_runs
from broadcaster.schedule.scheduler import schedule_records

if TYPE_CHECKING:
    from broadcaster.app import App


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect(app: App) -> dict:
    now = app.now()
    beat = app.store.read_state(DAEMON_STATE, check=check_heartbeat)
    state = "never started"
    if beat.get("heartbeat"):
        age = (now - datetime.fromisoformat(beat["heartbeat"])).total_seconds()
        if beat.get("stopped_at"):
            state = "stopped"
        elif age > 3 * HEARTBEAT_EVERY or not _alive(beat.get("pid")):
            state = "dead (no heartbeat)"
        else:
            state = "running"
    anns = outbox.active(app)
    pending = sum(a.counts()[outbox.PENDING] for a in anns)
    day_ago = now - timedelta(days=1)
    failures = list(deliverylog.query(app, status=outbox.FAILED, since=day_ago, limit=10))
    expired = list(deliverylog.query(app, status=outbox.EXPIRED, since=day_ago, limit=10))
    last_run = app.store.read_state(RUNS_STATE, check=check_runs).get("last_run")
    return {
        "daemon": {"state": state, **{k: beat.get(k) for k in
                                      ("pid", "host", "started_at", "heartbeat", "stopped_at")}},
        "queue": {"announcements": len(anns), "pending": pending},
        "last_run": last_run,
        "recent_failures": failures,
        "recent_expired": expired,
        "problems": (last_run or {}).get("problems", []),
        "failed_jobs": failed_jobs(app),
        "damaged": [d.to_json() for d in app.store.damaged()],
        "now": now.isoformat(timespec="seconds"),
    }


def failed_jobs(app: App) -> list[dict]:
    """Jobs whose last firing failed: ``[{"job", "error", "failed_at", "scheduled_for"}]``."""
    out = []
    for job_id, record in sorted(schedule_records(app).items()):
        if record.get("status") == "failed":
            out.append({"job": job_id, "error": record.get("error"),
                        "failed_at": record.get("failed_at"), "scheduled_for": record.get("fired")})
    return out
