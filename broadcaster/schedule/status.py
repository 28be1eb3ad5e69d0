"""``status``: is the daemon alive, how deep is the queue, what failed lately."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.queue import deliverylog, outbox
from broadcaster.schedule.daemon import HEARTBEAT_EVERY
from broadcaster.schedule.daemon import STATE_NAME as DAEMON_STATE
from broadcaster.schedule.passes import RUNS_STATE

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
    beat = app.store.read_state(DAEMON_STATE)
    state = "never started"
    if beat:
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
    return {
        "daemon": {"state": state, **{k: beat.get(k) for k in
                                      ("pid", "host", "started_at", "heartbeat", "stopped_at")}},
        "queue": {"announcements": len(anns), "pending": pending},
        "last_run": app.store.read_state(RUNS_STATE).get("last_run"),
        "recent_failures": failures,
        "recent_expired": expired,
        "now": now.isoformat(timespec="seconds"),
    }
