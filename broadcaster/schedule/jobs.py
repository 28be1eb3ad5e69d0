"""What a job does when it fires: its content kind's ``run``, given a ``JobContext``.

``execute(app, job, now)`` finds the job's content kind (``broadcaster.sources.kinds``)
and runs it with a ``JobContext``: the job, its targeted groups, the kind's
``feeds/`` section, one fetch client (``broadcaster.net``), and the ways to render and queue messages
(``broadcaster.queue.outbox.enqueue``). Nothing new means nothing queued.

Content that must reach each group once (an alert, a reminder, a greeting) uses
``once_only(state)``: the record and the enqueue happen under the same store
lock, so two processes cannot both send, and a failed enqueue records nothing;
records older than ``KEEP_DAYS`` are pruned. A source that fails (a feed down)
is reported in ``JobRun.problems`` (the caller says it); the job's other sources still post.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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


Progress = Callable[[int, int, int], None]    # (done, total, failed so far)

KEEP_DAYS = 400            # once-only records older than this are pruned


@dataclass
class JobRun:
    """What one run of a job did: the announcements it queued, what went wrong, and
    (``reasons``) why nothing, or less than its groups, was queued."""

    job_id: str
    announcements: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def execute(
    app: App,
    job: Job,
    now: datetime,
    *,
    scheduled_for: datetime | None = None,
    feeds: FeedsConfig | None = None,
    session: HttpClient | None = None,
    progress: Progress | None = None,
) -> JobRun:
    """Run ``job`` once for the time ``scheduled_for`` (default: now).

    ``session``: the fetch client the sources share; None: one for this run,
    allowed private addresses only with ``defaults.allow_private_feeds``.
    ``progress(done, total, failed)``: told as a source works through long work
    (feeds read of all), for a bar on a terminal.
    Problems are returned in the run, not logged: the caller says them once (``jobs run``
    as warnings, ``run-once`` as errors, the daemon in its log).
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
        on_progress=progress,
    )
    try:
        kind.run(ctx)
    finally:
        if session is None:
            client.close()
    if not ctx.run.announcements and not ctx.run.reasons:
        ctx.nothing(_why_nothing(ctx))
    return ctx.run


def _count(groups: Sequence[Group]) -> str:
    return "its group" if len(groups) == 1 else f"all {len(groups)} groups"


def _why_nothing(ctx: JobContext) -> str:
    """The reason a run queued nothing when its content kind gave none."""
    job = ctx.job
    if not ctx.targets:
        left_out = f" minus {' '.join(job.exclude)}" if job.exclude else ""
        return f"no group matched (to: {' '.join(job.to)}{left_out})"
    if ctx.run.problems:
        return f"{len(ctx.run.problems)} source(s) failed (see the problems)"
    return "nothing new to send"


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
    on_progress: Progress | None = None

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.job.tz)

    def progress(self, done: int, total: int, failed: int = 0) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total, failed)

    def problem(self, text: str) -> None:
        self.run.problems.append(text)

    def nothing(self, why: str) -> None:
        if why not in self.run.reasons:
            self.run.reasons.append(why)

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
        from broadcaster.templating.batch import RenderBatch  # start-up time: loaded when first used

        renderer = RenderBatch(self.app.templates)    # each distinct message rendered once
        messages = [
            Message(g.id, renderer.render(
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
                if groups and not fresh:
                    self.nothing(f"{key}: already sent to {_count(groups)} (once only)")
                    return None
                ann = self.send(template, fresh, data, **send)
                if ann:
                    record["groups"].extend(g.id for g in fresh)
                return ann

            yield once
            cutoff = iso(self.now - timedelta(days=KEEP_DAYS))
            for key in [k for k, v in records.items() if str(v.get("at", "")) < cutoff]:
                del records[key]
