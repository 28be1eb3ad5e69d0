"""What a job does when it fires: its content kind's ``run``, given a ``JobContext``.

``execute(app, job, now)`` finds the job's content kind (``broadcaster.sources.kinds``)
and runs it with a ``JobContext``: the job, its targeted groups, the kind's
``feeds/`` section, one fetch client (``broadcaster.net``), and the ways to render and queue messages
(``broadcaster.queue.outbox.enqueue``). Nothing new means nothing queued.

Content that must reach each group once (an alert, a reminder, a greeting) uses
``once_only(state)``: the record and the enqueue happen under the same store
lock, so two processes cannot both send, and a failed enqueue records nothing;
records older than ``KEEP_DAYS`` are pruned. A source that fails (a feed down)
is reported in ``JobRun.problems`` and logged; the job's other sources still post.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from broadcaster.config.feeds import FeedsConfig, load_feeds
from broadcaster.config.groups import Group
from broadcaster.config.schedules import Job
from broadcaster.errors import InputError
from broadcaster.net.client import HttpClient, fetch_client
from broadcaster.queue.outbox import Message, enqueue
from broadcaster.sources import kinds
from broadcaster.sources.kinds import Data, Once
from broadcaster.targeting import select
from broadcaster.timeparse import iso

if TYPE_CHECKING:
    from broadcaster.app import App

log = logging.getLogger(__name__)

KEEP_DAYS = 400            # once-only records older than this are pruned


@dataclass
class JobRun:
    job_id: str
    announcements: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def execute(
    app: App,
    job: Job,
    now: datetime,
    *,
    scheduled_for: datetime | None = None,
    feeds: FeedsConfig | None = None,
    session: HttpClient | None = None,
) -> JobRun:
    """Run ``job`` once for the time ``scheduled_for`` (default: now).

    ``session``: the fetch client the sources share; None: one for this run,
    allowed private addresses only with ``defaults.allow_private_feeds``.
    """
    kind = kinds.get(job.content)
    feeds = feeds or load_feeds(app.root)
    app.redactor.add(feeds.secrets())   # a source's key never shows in a problem or log line
    when = scheduled_for or now
    client = session or fetch_client(allow_private=app.groups.defaults.allow_private_feeds)
    ctx = JobContext(
        app=app, job=job, now=now,
        section=getattr(feeds, kind.section.name) if kind.section else None,
        source=f"job:{job.id}@{iso(when.astimezone(job.tz))}",
        session=client,
        targets=select(app.groups, job.to, job.exclude),
        run=JobRun(job.id),
    )
    try:
        kind.run(ctx)
    finally:
        if session is None:
            client.close()
    for problem in ctx.run.problems:
        log.warning("job %s: %s", job.id, app.redact(problem))
    return ctx.run


@dataclass
class JobContext:
    """What a content kind's ``run`` is given (``broadcaster.sources.kinds.RunContext``)."""

    app: App
    job: Job
    now: datetime
    section: Any
    source: str
    session: HttpClient
    targets: list[Group]
    run: JobRun

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.job.tz)

    def problem(self, text: str) -> None:
        self.run.problems.append(text)

    def groups_for(self, selectors: Sequence[str], what: str) -> list[Group]:
        """Targets of this job that ``selectors`` (a feed's ``to``) also select."""
        try:
            chosen = {g.id for g in select(self.app.groups, list(selectors))}
        except InputError as exc:
            self.problem(f"{what}: {exc}")
            return []
        return [g for g in self.targets if g.id in chosen]

    def send(self, template: str, groups: Sequence[Group], data: Data, *,
             festival: str | None = None, **queue: Any) -> str | None:
        """Render ``template`` for each group (``data``: a mapping, or a function of the
        group) and queue them as one announcement; its id, or None when nothing was queued."""
        messages = [
            Message(g.id, self.app.templates.render(
                template, group=g, data=data(g) if callable(data) else data,
                now=self.local_now, festival=festival))
            for g in groups
        ]
        ann = enqueue(self.app, messages, source=queue.pop("source", self.source), **queue)
        if ann:
            self.run.announcements.append(ann)
        return ann

    @contextmanager
    def once_only(self, state: str) -> Iterator[Once]:
        """``once(key, groups, template, data, *, at=None, **send)`` for each thing that must
        reach a group once: the groups already recorded under ``key`` in ``state`` are left
        out, the others are sent and recorded in the same locked step (``at``: the record's
        time, for pruning; default now)."""
        with self.app.store.state(state) as records:
            def once(key: str, groups: Sequence[Group], template: str, data: Data, *,
                     at: datetime | None = None, **send: Any) -> str | None:
                record = records.setdefault(key, {"at": iso(at or self.now), "groups": []})
                fresh = [g for g in groups if g.id not in record["groups"]]
                ann = self.send(template, fresh, data, **send)
                if ann:
                    record["groups"].extend(g.id for g in fresh)
                return ann

            yield once
            cutoff = iso(self.now - timedelta(days=KEEP_DAYS))
            for key in [k for k, v in records.items() if str(v.get("at", "")) < cutoff]:
                del records[key]
