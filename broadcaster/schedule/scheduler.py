"""When jobs fire: cron times (APScheduler's CronTrigger), catch-up, at most once.

``fire_due(app, now)`` is the whole contract for ``run-once`` and the daemon:
for each job it computes the scheduled times since the job's last recorded
pass, decides (catch-up policy) whether the latest of them fires, and records
that decision in the ``schedule`` state *under the store lock, before* running
the job, claiming the time with ``Store.claim_slot`` (on PostgreSQL a unique
key, whatever the document says) — so two processes (a daemon and a cron
``run-once``, on one machine or on several) never fire the same scheduled time
twice. A job whose content then fails is logged and
recorded as failed; it is not retried for that time (at most once).

- ``catch_up: once`` (default): the latest missed time fires if it is at most
  ``grace`` (default 1h) old; ``skip``: only a time at most ``ON_TIME`` old
  fires (cron's own latency), older ones are recorded as skipped.
- A job seen for the first time does not catch up the past, except a time at
  most ``NEW_JOB_LOOKBACK`` old (the minute cron itself runs in).
- Times are instants; wall-clock times repeated by a DST fall-back fire once,
  times skipped by a spring-forward fire at the first instant after the gap.

``ScheduleRunner`` is the daemon's alarm clock: an APScheduler
BackgroundScheduler with one CronTrigger per job that calls ``on_due`` at the
right moments; the daemon then runs its pass (which calls ``fire_due``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from broadcaster.config.job import Job, cron_key, jobs_key, keep_jobs, kept_jobs
from broadcaster.errors import ConfigError, InputError, did_you_mean
from broadcaster.timeparse import from_iso, iso

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

    from broadcaster.app import App
    from broadcaster.config.feeds import FeedsConfig
    from broadcaster.schedule.jobs import JobRun

log = logging.getLogger(__name__)

STATE = "schedule"
ON_TIME = timedelta(minutes=5)
NEW_JOB_LOOKBACK = timedelta(seconds=60)
FORGET_AFTER = timedelta(days=400)     # records of jobs gone from the config this long are dropped
_TICK = timedelta(microseconds=1)


def load_jobs(app: App, problems: list[str] | None = None, *,
              known_crons: frozenset[str] = frozenset()) -> list[Job]:
    """The valid jobs. Given ``problems``, an invalid job is described there and left
    out (it stops only itself); without it, ConfigError lists every problem.
    ``known_crons``: ``cron_key``s already known valid (see ``load_schedules``).
    Jobs of unchanged schedules come as the last load kept them (``config/job.py``)."""
    tz = app.default_timezone
    key = jobs_key(app.root, tz)
    jobs = kept_jobs(app.cache_dir, key) if key is not None else None
    if jobs is not None:
        return jobs
    # start-up time: YAML, pydantic and the content kinds only when schedules/ changed
    from broadcaster.config.schedules import load_schedules

    found: list = []
    jobs = load_schedules(app.root, tz, problems=found, known_crons=known_crons)
    if problems is None and found:
        raise ConfigError(found)
    if problems is not None:
        problems.extend(f"{p} (job left out until this is fixed)" for p in found)
    if not found and key is not None and jobs_key(app.root, tz) == key:
        keep_jobs(app.cache_dir, key, jobs, app.root)
    return jobs


RECORD_SHAPE = {"last": "time", "fired": "time", "skipped": "time", "failed_at": "time",
                "tz": str, "wall": str, "status": str, "error": str, "announcements": list,
                "problems": list, "reasons": list, "next": "time", "cron": str}


def check_state(doc: dict) -> None:
    """The ``schedule`` document: job id -> record (``plan``); ``BadRecord`` otherwise."""
    from broadcaster.store.records import check_shape  # start-up time: loaded when first used

    for job_id, record in doc.items():
        check_shape(record, f"job {job_id}", RECORD_SHAPE)


def rebuild_state(app: App) -> dict:
    """The ``schedule`` document recovered after damage from what the queue still says.

    Every announcement a job queued names the scheduled time it was fired for
    (``source: job:<id>@<time>``); each job's latest such time becomes its record,
    so that time is not fired again. A job with none recorded in the last two days
    falls back to the rule for a job seen for the first time.
    """
    since = app.now() - timedelta(days=2)
    latest: dict[str, datetime] = {}
    for ann in [*app.store.archived(since), *app.store.active()]:
        source = ann.meta.source or ""
        if not source.startswith("job:") or "@" not in source:
            continue
        job_id, _, when = source[4:].rpartition("@")
        at = from_iso(when)
        if at is not None and (job_id not in latest or at > latest[job_id]):
            latest[job_id] = at
    return {job_id: {"last": iso(at.astimezone(UTC)), "fired": iso(at), "status": "done"}
            for job_id, at in latest.items()}


def schedule_records(app: App) -> dict[str, dict]:
    """A snapshot of every job's record (for ``status``)."""
    return app.store.read_state(STATE, check=check_state, rebuild=lambda: rebuild_state(app))


def load_feeds_isolated(app: App, problems: list[str]) -> FeedsConfig:
    """``feeds/`` with its invalid entries left out and described in ``problems``."""
    from broadcaster.config.feeds import load_feeds  # start-up time: feeds are read only when a job is due

    found: list = []
    feeds = load_feeds(app.root, problems=found)
    problems.extend(f"{p} (feed left out until this is fixed)" for p in found)
    return feeds


def _wall(dt: datetime, job: Job) -> str:
    return dt.astimezone(job.tz).replace(tzinfo=None).isoformat()


def next_after(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``, in UTC.

    Everything is compared in UTC: Python compares and subtracts two datetimes
    of the same zone by wall clock, which is wrong across a DST change. A loop
    guard covers APScheduler answering the same repeated (fall-back) time again.
    """
    after = after.astimezone(UTC)
    probe = after + _TICK
    for _ in range(180):
        t = trigger.get_next_fire_time(None, probe)
        if t is not None:
            t = _existing(t)
        if t is None or t > after:
            return t
        probe += timedelta(minutes=1)   # stuck on a repeated (fall-back) wall time
    return None


def _existing(t: datetime) -> datetime:
    """``t`` in UTC; a wall time that a spring-forward skipped becomes the gap's end."""
    utc = t.astimezone(UTC)
    if utc.astimezone(t.tzinfo).replace(tzinfo=None) == t.replace(tzinfo=None):
        return utc
    lo = t.replace(fold=1).astimezone(UTC)           # both readings of the missing time
    hi = t.replace(fold=0).astimezone(UTC)
    lo, hi = min(lo, hi), max(lo, hi)
    after = hi.astimezone(t.tzinfo).utcoffset()
    while hi - lo > timedelta(seconds=1):            # the instant the offset changed
        mid = lo + (hi - lo) / 2
        if mid.astimezone(t.tzinfo).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0) if hi.microsecond == 0 else hi


def plan(job: Job, record: dict | None, now: datetime) -> tuple[dict, datetime | None]:
    """Pure: the new record for ``job`` and the scheduled time to fire now (or None).

    The record keeps ``next``, the job's first time after ``last``, and the ``cron``
    it was computed for: while that time is still ahead, nothing is due and no
    trigger is built (start-up time: a cron minute with nothing due never loads
    APScheduler).
    """
    record = dict(record or {})
    now = now.astimezone(UTC)
    last = from_iso(record.get("last")) or now - NEW_JOB_LOOKBACK
    if last >= now:       # already processed up to now (or the clock went back)
        return record, None
    ahead = from_iso(record.get("next")) if record.get("cron") == cron_key(job) else None
    if ahead is not None and ahead > now:
        record["last"] = iso(now) if now.microsecond == 0 else now.isoformat()
        return record, None
    tolerance = max(job.grace, ON_TIME) if job.catch_up == "once" else ON_TIME
    trigger = job.trigger()
    last_wall = record.get("wall") if record.get("tz") == job.timezone else None
    first = next_after(trigger, last)
    latest = None
    # only times within the tolerance can fire: walk those, jump over a long downtime
    t = next_after(trigger, max(last, now - tolerance - _TICK))
    while t is not None and t <= now:
        if last_wall is None or _wall(t, job) > last_wall:
            latest = t
        t = next_after(trigger, t)
    missed = first is not None and first <= now and (latest is None or first < latest)
    record["last"] = iso(now) if now.microsecond == 0 else now.isoformat()
    record["tz"] = job.timezone
    if missed and latest is None:
        record["skipped"] = iso(now)
    if latest is not None:
        latest = latest.astimezone(job.tz)
        record["fired"] = iso(latest)
        record["wall"] = _wall(latest, job)
    upcoming = next_after(trigger, now)
    record.pop("next", None)
    if upcoming is not None:
        record["next"], record["cron"] = iso(upcoming), cron_key(job)
    return record, latest


def fire_due(
    app: App,
    now: datetime | None = None,
    *,
    jobs: list[Job] | None = None,
    feeds: FeedsConfig | None = None,
    problems: list[str] | None = None,
) -> list[str]:
    """Fire every job that is due at ``now``; return the ids of the jobs that fired.

    Needs no dispatch lock (content fetching must not hold back sending): each
    scheduled time is claimed under the store lock, so concurrent callers still
    fire it once. ``jobs`` and ``feeds`` default to what is on disk (a daemon
    passes the config it loaded); ``feeds/`` is read only when a job is due.
    One broken thing stops only itself: an invalid job or feed entry is left out,
    a job that fails is recorded as failed (``status`` shows it until it next
    succeeds); each is described in ``problems``.
    """
    now = now or app.now()
    problems = [] if problems is None else problems
    if jobs is None:   # crons this state already planned with are valid: no trigger is built
        known = frozenset(r.get("cron", "") for r in schedule_records(app).values())
        jobs = load_jobs(app, problems, known_crons=known)
    due: list[tuple[Job, datetime]] = []
    with app.store.state(STATE, check=check_state, rebuild=lambda: rebuild_state(app)) as st:
        for job in jobs:
            if not job.enabled:
                continue
            record, when = plan(job, st.get(job.id), now)
            if when is not None and app.store.claim_slot(job.id, when):
                record["status"] = "firing"
                due.append((job, when))
            st[job.id] = record
        if due and feeds is None:
            feeds = load_feeds_isolated(app, problems)
        known = {j.id for j in jobs}
        cutoff = iso(now - FORGET_AFTER)
        for job_id in [k for k, v in st.items() if k not in known and v.get("last", "") < cutoff]:
            del st[job_id]
    if not due:
        return []
    # start-up time: loaded when first used
    from broadcaster.schedule.jobs import execute  # sources and their parsers: only when a job fires

    fired = []
    for job, when in due:
        status: dict = {"status": "done", "error": None}
        try:
            run = execute(app, job, now, scheduled_for=when, feeds=feeds)
            status["announcements"] = run.announcements
            status["problems"] = [app.redact(p) for p in run.problems][:10]
            problems.extend(f"job {job.id} ({job.where}): {p}" for p in status["problems"])
            status["reasons"] = run.reasons[:10]
            fired.append(job.id)
            log.info("job %s fired for %s: %d announcement(s)%s", job.id, iso(when),
                     len(run.announcements), f" ({'; '.join(run.reasons)})" if run.reasons else "")
        except Exception as exc:   # one job's failure must not stop the others or dispatch
            status = {"status": "failed", "error": app.redact(f"{type(exc).__name__}: {exc}"),
                       "failed_at": iso(now)}
            problems.append(f"job {job.id} ({job.where}) failed for {iso(when)}: "
                            f"{status['error']}")
        with app.store.state(STATE, check=check_state, rebuild=lambda: rebuild_state(app)) as st:
            st.setdefault(job.id, {}).update(status)
    return fired


def next_fire_times(
    app: App, now: datetime | None = None, *, jobs: list[Job] | None = None
) -> dict[str, datetime | None]:
    """Each enabled job's next scheduled time after ``now`` (None for a disabled job)."""
    now = now or app.now()
    jobs = load_jobs(app) if jobs is None else jobs
    out: dict[str, datetime | None] = {}
    for j in jobs:
        t = next_after(j.trigger(), now) if j.enabled else None
        out[j.id] = t and t.astimezone(j.tz)
    return out


def find_job(jobs: list[Job], job_id: str) -> Job:
    for job in jobs:
        if job.id == job_id:
            return job
    hint = did_you_mean(job_id, [j.id for j in jobs], " (see: jobs list)", cutoff=0.5)
    raise InputError(f"no job with id {job_id!r}{hint}")


def run_job(app: App, job_id: str, now: datetime | None = None) -> list[str]:
    """Fire ``job_id`` now, outside its schedule; its announcement ids (see ``try_job``)."""
    return try_job(app, job_id, now).announcements


def try_job(app: App, job_id: str, now: datetime | None = None, *,
            progress: Callable[[int, int, int], None] | None = None) -> JobRun:
    """Fire ``job_id`` now, outside its schedule (``jobs run``): its announcement ids,
    its problems, and why nothing (more) was queued.

    The schedule record is untouched; the content's own once-only records
    (seen news, greeted festivals, sent alerts) still apply.
    """
    from broadcaster.schedule.jobs import execute  # start-up time: loaded when first used

    now = now or app.now()
    job = find_job(load_jobs(app), job_id)
    return execute(app, job, now, progress=progress)


class ScheduleRunner:
    """Wakes the daemon when a job is due; keeps the last good config across reloads.

    ``on_due()`` is called (no arguments, from APScheduler's thread) at each
    job's cron time; the daemon then runs its pass, whose ``fire_due`` decides
    what fires. The daemon should still run a pass every minute or so: the
    alarm is a latency optimisation, ``fire_due`` is the truth.
    """

    def __init__(self, app: App, on_due: Callable[[], object]):
        self.app = app
        self.on_due = on_due
        self.jobs: list[Job] = []
        self.feeds: FeedsConfig | None = None
        self._lock = threading.Lock()
        from apscheduler.schedulers.background import BackgroundScheduler  # start-up time: loaded when first used

        self._scheduler = BackgroundScheduler(daemon=True)

    def start(self) -> list[str]:
        """Load the config and start the alarms; returns problems (empty when all is well)."""
        problems = self.reload()
        self._scheduler.start()
        return problems

    def reload(self) -> list[str]:
        """Re-read schedules and feeds; an invalid job or feed is left out and described
        in the problems returned (the rest runs)."""
        problems: list[str] = []
        jobs = load_jobs(self.app, problems)
        feeds = load_feeds_isolated(self.app, problems)
        for p in problems:
            log.error("%s", p)
        with self._lock:
            self.jobs, self.feeds = jobs, feeds
            self._scheduler.remove_all_jobs()
            for job in jobs:
                if job.enabled:
                    self._scheduler.add_job(
                        self.on_due, trigger=job.trigger(), id=job.id,
                        name=job.id, coalesce=True, max_instances=1, misfire_grace_time=None,
                        replace_existing=True,
                    )
        log.info("schedules loaded: %d job(s)", len(jobs))
        return problems

    def next_wake(self) -> datetime | None:
        times = [j.next_run_time for j in self._scheduler.get_jobs() if j.next_run_time]
        return min(times) if times else None

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
