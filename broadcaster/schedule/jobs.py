"""What a job does when it fires: content → one message per group → the queue.

``execute(app, job, now)`` reads the job's content source, renders the job's
kind of template for every targeted group that has something to receive, and
queues the result as announcements (``broadcaster.queue.outbox.enqueue``). Nothing
new means nothing queued. Each kind's once-only promise is kept in state:

- ``news-<feed>``        per job, the items it has seen (news.py);
- ``weather-alerts``     which groups got which alert id (urgent, separate announcements);
- ``holiday-greetings``  which groups were greeted for which festival day;
- ``event-reminders``    which groups were reminded of which occurrence.

Where "once" matters, the record and the enqueue happen under the same store
lock, so two processes cannot both send, and a failed enqueue records nothing.
A source that fails (a feed down) is reported in ``JobRun.problems`` and
logged; the other sources of the same job still post.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from broadcaster.config.feeds import FeedsConfig, WeatherConfig, load_feeds
from broadcaster.config.groups import Group
from broadcaster.config.schedules import Job
from broadcaster.errors import InputError
from broadcaster.queue.outbox import Message, enqueue
from broadcaster.sources import SourceError, events, news
from broadcaster.sources.holidays import HolidayCalendar
from broadcaster.sources.weather import Report, WeatherSource, location_key
from broadcaster.targeting import select
from broadcaster.timeparse import iso

log = logging.getLogger(__name__)

KEEP_DAYS = 400            # once-only records older than this are pruned
DEFAULT_MAX_ITEMS = 5
DEFAULT_DAYS_AHEAD = 7


@dataclass
class JobRun:
    job_id: str
    announcements: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def execute(
    app,
    job: Job,
    now: datetime,
    *,
    scheduled_for: datetime | None = None,
    feeds: FeedsConfig | None = None,
    session: requests.Session | None = None,
) -> JobRun:
    """Run ``job`` once for the time ``scheduled_for`` (default: now)."""
    when = scheduled_for or now
    ctx = _Context(
        app=app, job=job, now=now, feeds=feeds or load_feeds(app.root),
        source=f"job:{job.id}@{iso(when.astimezone(job.tz))}",
        session=session or requests.Session(),
        targets=select(app.groups, job.to, job.exclude),
        run=JobRun(job.id),
    )
    HANDLERS[job.content](ctx)
    for problem in ctx.run.problems:
        log.warning("job %s: %s", job.id, app.redact(problem))
    return ctx.run


@dataclass
class _Context:
    app: object
    job: Job
    now: datetime
    feeds: FeedsConfig
    source: str
    session: requests.Session
    targets: list[Group]
    run: JobRun

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.job.tz)

    def render(self, name: str, group: Group, data: dict, festival: str | None = None) -> str:
        return self.app.templates.render(name, group=group, data=data, now=self.local_now,
                                         festival=festival)

    def enqueue(self, messages: list[Message], **kw) -> str | None:
        ann = enqueue(self.app, messages, source=kw.pop("source", self.source), **kw)
        if ann:
            self.run.announcements.append(ann)
        return ann

    def groups_for(self, selectors: list[str], what: str) -> list[Group]:
        """Targets of this job that ``selectors`` (a feed's ``to``) also select."""
        try:
            chosen = {g.id for g in select(self.app.groups, selectors)}
        except InputError as exc:
            self.run.problems.append(f"{what}: {exc}")
            return []
        return [g for g in self.targets if g.id in chosen]


def _prune(records: dict, now: datetime, stamp_key: str = "at") -> None:
    cutoff = iso(now - timedelta(days=KEEP_DAYS))
    for key in [k for k, v in records.items() if str(v.get(stamp_key, "")) < cutoff]:
        del records[key]


# --- weather -------------------------------------------------------------------------

def _weather(ctx: _Context) -> None:
    config = ctx.feeds.weather or WeatherConfig()
    ctx.app.redactor.add(config.secrets())
    located = [g for g in ctx.targets if g.location is not None]
    if len(located) < len(ctx.targets):
        ctx.run.problems.append(
            f"{len(ctx.targets) - len(located)} targeted group(s) have no location; skipped")
    source = WeatherSource(config, ctx.app.root, ctx.job.tz, session=ctx.session)
    reports = source.fetch_many([g.location for g in located], ctx.now)
    by_group: dict[str, Report] = {}
    for g in located:
        try:
            got = reports.get(location_key(g.location, config.provider))
        except SourceError as exc:
            ctx.run.problems.append(f"group {g.id}: {exc}")
            continue
        if isinstance(got, Report):       # a failed location is reported once, below
            by_group[g.id] = got
    for err in {str(r) for r in reports.values() if isinstance(r, SourceError)}:
        ctx.run.problems.append(f"weather: {err}")
    groups = [g for g in located if g.id in by_group]
    if ctx.job.options.get("forecast", True):
        ctx.enqueue([
            Message(g.id, ctx.render("weather", g, {"weather": by_group[g.id].weather}))
            for g in groups
        ])
    if ctx.job.options.get("alerts", config.alerts):
        _weather_alerts(ctx, groups, by_group)


def _weather_alerts(ctx: _Context, groups: list[Group], by_group: dict[str, Report]) -> None:
    alerts: dict[str, tuple[dict, list[Group]]] = {}
    for g in groups:
        for alert in by_group[g.id].alerts:
            alerts.setdefault(alert["id"], (alert, []))[1].append(g)
    if not alerts:
        return
    with ctx.app.store.state("weather-alerts") as st:
        for alert_id, (alert, members) in alerts.items():
            record = st.setdefault(alert_id, {"at": iso(ctx.now), "groups": []})
            fresh = [g for g in members if g.id not in record["groups"]]
            messages = [
                Message(g.id, ctx.render("weather_alert", g, {
                    "alert": alert, "location": g.location.name if g.location else "",
                }))
                for g in fresh
            ]
            if ctx.enqueue(messages, urgent=True, source=f"weather-alert:{alert_id}",
                           expires=timedelta(hours=12)):
                record["groups"].extend(g.id for g in fresh)
        _prune(st, ctx.now)


# --- news ----------------------------------------------------------------------------

def _news(ctx: _Context) -> None:
    wanted = ctx.job.options.get("feeds")
    feeds = [f for f in ctx.feeds.news if wanted is None or f.id in wanted]
    groups_by_feed = {f.id: [g.id for g in ctx.groups_for(f.to, f"news feed {f.id}")]
                      for f in feeds}
    feeds = [f for f in feeds if groups_by_feed[f.id]]
    store = ctx.app.store
    caches = {f.id: store.read_state(news.state_name(f.id)) for f in feeds}
    results = news.NewsSource(ctx.app.root, session=ctx.session).fetch_all(feeds, caches)
    new_by_feed: dict[str, list[dict]] = {}
    fresh_raw: dict[str, list[dict]] = {}
    for res in results:
        feed = res.feed
        if res.error:
            ctx.run.problems.append(res.error)
            continue
        with store.state(news.state_name(feed.id)) as st:
            if res.status == 200:
                st.update({k: v for k, v in caches[feed.id].items() if k != "seen"})
            items = st.get("items", [])
            seen_all = st.setdefault("seen", {})
            if ctx.job.id not in seen_all:   # first read by this job: the back catalogue is old
                seen_all[ctx.job.id] = {}
                news.mark_seen(seen_all[ctx.job.id], items, items, ctx.now)
                continue
            fresh = news.unseen(items, seen_all[ctx.job.id])
        if fresh:
            fresh_raw[feed.id] = fresh
            title = st.get("title") or feed.id
            new_by_feed[feed.id] = [news.for_template(i, feed, title, ctx.job.tz) for i in fresh]
    max_items = ctx.job.options.get("max_items", DEFAULT_MAX_ITEMS)
    per_group = news.digest(new_by_feed, groups_by_feed, max_items)
    ctx.enqueue([
        Message(g.id, ctx.render("news", g, {"items": per_group[g.id]}))
        for g in ctx.targets if per_group.get(g.id)
    ])
    # only now (queued durably) are these items seen: a crash before this line reposts, never loses
    for feed_id, fresh in fresh_raw.items():
        with store.state(news.state_name(feed_id)) as st:
            seen = st.setdefault("seen", {}).setdefault(ctx.job.id, {})
            news.mark_seen(seen, fresh, st.get("items", []), ctx.now)


# --- events --------------------------------------------------------------------------

def _events(ctx: _Context) -> None:
    wanted = ctx.job.options.get("feeds")
    source = events.EventsSource(ctx.app.root, ctx.job.tz, session=ctx.session)
    reminder = ctx.job.options.get("reminder", False)
    days = 1 if reminder else ctx.job.options.get("days_ahead", DEFAULT_DAYS_AHEAD)
    midnight = ctx.local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = _day_start(midnight, 1) if reminder else midnight
    end = _day_start(start, days)
    per_group: dict[str, list[dict]] = {}
    for feed in ctx.feeds.events:
        if wanted is not None and feed.id not in wanted:
            continue
        groups = ctx.groups_for(feed.to, f"events {feed.id}")
        if not groups:
            continue
        try:
            found = source.between(feed, start, end)
        except SourceError as exc:
            ctx.run.problems.append(str(exc))
            continue
        if not reminder:   # a preview shows what has not finished yet
            found = [ev for ev in found if ev["all_day"] or (ev["end"] or ev["start"]) >= ctx.now]
        for g in groups:
            per_group.setdefault(g.id, []).extend(found)
    targets = [g for g in ctx.targets if per_group.get(g.id)]
    if reminder:
        _event_reminders(ctx, targets, per_group)
        return
    ctx.enqueue([
        Message(g.id, ctx.render("events", g, {
            "events": [events.for_template(ev) for ev in
                       sorted(per_group[g.id], key=lambda ev: (ev["start"], ev["title"]))],
            "days_ahead": days, "reminder": False,
        }))
        for g in targets
    ])


def _day_start(midnight: datetime, days: int) -> datetime:
    """Local midnight ``days`` later (wall-clock arithmetic, DST-safe)."""
    naive = midnight.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=midnight.tzinfo)


def _event_reminders(ctx: _Context, targets: list[Group], per_group: dict[str, list[dict]]):
    occurrences: dict[str, tuple[dict, list[Group]]] = {}
    for g in targets:
        for ev in per_group[g.id]:
            occurrences.setdefault(ev["uid"], (ev, []))[1].append(g)
    if not occurrences:
        return
    with ctx.app.store.state("event-reminders") as st:
        for uid, (ev, members) in sorted(occurrences.items(), key=lambda kv: kv[1][0]["start"]):
            record = st.setdefault(uid, {"at": iso(ev["start"]), "groups": []})
            fresh = [g for g in members if g.id not in record["groups"]]
            data = {"events": [events.for_template(ev)], "days_ahead": 1, "reminder": True}
            if ctx.enqueue([Message(g.id, ctx.render("events", g, data)) for g in fresh]):
                record["groups"].extend(g.id for g in fresh)
        _prune(st, ctx.now)


# --- holidays ------------------------------------------------------------------------

def _holidays(ctx: _Context) -> None:
    festivals = HolidayCalendar(ctx.feeds.holidays).fetch(ctx.local_now.date())
    if not festivals:
        return
    with ctx.app.store.state("holiday-greetings") as st:
        for fest in festivals:
            key = f"{fest['key']}:{fest['date'].isoformat()}"
            record = st.setdefault(key, {"at": iso(ctx.now), "groups": []})
            fresh = [g for g in ctx.targets if g.id not in record["groups"]]
            messages = [
                Message(g.id, ctx.render("holiday", g, {"festival": fest}, festival=fest["key"]))
                for g in fresh
            ]
            if ctx.enqueue(messages, source=f"{ctx.source}:{fest['key']}"):
                record["groups"].extend(g.id for g in fresh)
        _prune(st, ctx.now)


# --- a named template ----------------------------------------------------------------

def _template(ctx: _Context) -> None:
    data = {"vars": dict(ctx.job.options)}
    ctx.enqueue([Message(g.id, ctx.render(ctx.job.template, g, data)) for g in ctx.targets])


HANDLERS = {
    "weather": _weather,
    "news": _news,
    "events": _events,
    "holidays": _holidays,
    "template": _template,
}
