"""``schedules/*.yaml``: jobs — when what content is posted to whom.

A job is a 5-field crontab line in its timezone (``defaults.timezone`` of
groups.yaml unless ``timezone:`` says otherwise), a content kind, selectors,
options for that kind, and a catch-up policy for times missed while nothing ran.
Ids are unique across all files. Every problem is reported at once as
``file:line: field: message``.

Crontab day-of-week follows cron (0 or 7 = Sunday, 1 = Monday; names ``mon``…
work too). A line restricting both day-of-month and day-of-week is refused:
cron ORs them, APScheduler ANDs them, and a resident should not get the wrong one.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from broadcaster.config.fields import Selectors, Slug, check_zone
from broadcaster.config.job import Job, make_trigger
from broadcaster.config.yamlfile import line_of, load_folder, pydantic_problems
from broadcaster.errors import ConfigError, InputError, Problem
from broadcaster.sources import kinds
from broadcaster.timeparse import parse_duration


def parse_grace(value: Any) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``90s`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    try:
        return parse_duration(str(value))
    except InputError:
        raise ValueError(f"invalid duration {value!r} (use e.g. 30m, 1h, 2h)") from None


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    cron: str
    content: str                     # a content kind (broadcaster.sources.kinds)
    to: Selectors
    exclude: list[str] = []
    template: str | None = None
    timezone: str | None = None
    options: dict[str, Any] = {}
    catch_up: Literal["once", "skip"] = "once"
    grace: timedelta = timedelta(hours=1)
    enabled: bool = True
    description: str | None = None

    @field_validator("content")
    @classmethod
    def _known_content(cls, v):
        known = kinds.content_kinds()
        if v not in known:
            raise ValueError(f"unknown content {v!r} (known: {', '.join(known)})")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v):
        return None if v is None else check_zone(v)

    @field_validator("grace", mode="before")
    @classmethod
    def _grace(cls, v):
        return parse_grace(v)

    @model_validator(mode="after")
    def _content(self):
        kind = kinds.get(self.content)
        if kind.names_template:
            if not self.template:
                raise ValueError(f"content: {self.content} needs `template: <name>`")
            return self
        if self.template:
            raise ValueError(f"`template` is only for content: template (this is {self.content})")
        known = kind.options or {}
        for name, value in self.options.items():
            if name not in known:
                allowed = ", ".join(known) or "none"
                raise ValueError(f"unknown option {name!r} for {self.content} (known: {allowed})")
            kind = known[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"option {name!r} must be a {kind.__name__}")
            if kind is int and not 1 <= value <= 366:
                raise ValueError(f"option {name!r} must be between 1 and 366")
        return self


def load_schedules(
    root: Path, default_tz: str = "Asia/Shanghai", environ: dict[str, str] | None = None,
    *, problems: list[Problem] | None = None, known_crons: frozenset[str] = frozenset(),
) -> list[Job]:
    """Every job of every ``schedules/*.yaml``; ConfigError listing every problem.

    Each cron line is checked by building its trigger, except a ``cron_key`` in
    ``known_crons`` (one the schedule state already planned with, so valid).

    Given a ``problems`` list, the problems go there instead and the valid jobs are
    returned: a broken job (or an unreadable file) stops only itself.
    """
    isolate = problems is not None
    problems = [] if problems is None else problems
    jobs: list[Job] = []
    seen: dict[str, str] = {}
    for shown, data, lines in load_folder(root / "schedules", problems, environ=environ):
        if not isinstance(data, dict) or not isinstance(data.get("jobs", []), list):
            problems.append(Problem(shown, 1, None, "expected a mapping with a 'jobs:' list"))
            continue
        for key in data:
            if key != "jobs":
                problems.append(Problem(shown, line_of(lines, (key,)), str(key),
                                        "unknown key (a schedules file holds `jobs:`)"))
        for i, raw in enumerate(data.get("jobs") or []):
            where = ("jobs", i)
            try:
                spec = JobSpec.model_validate(raw)
            except ValidationError as exc:
                problems.extend(pydantic_problems(exc, shown, lines, where))
                continue
            here = f"{shown}:{line_of(lines, where)}"
            if spec.id in seen:
                problems.append(Problem(shown, line_of(lines, (*where, "id")), f"jobs.{i}.id",
                                        f"duplicate job id {spec.id!r} (first at {seen[spec.id]})"))
                continue
            seen[spec.id] = here
            tz = spec.timezone or default_tz
            try:
                if f"{spec.cron} {tz}" not in known_crons:
                    make_trigger(spec.cron, ZoneInfo(tz))
            except ValueError as exc:
                problems.append(Problem(shown, line_of(lines, (*where, "cron")),
                                        f"jobs.{i}.cron", str(exc)))
                continue
            jobs.append(Job(
                id=spec.id, cron=spec.cron, timezone=tz, content=spec.content,
                to=tuple(spec.to), exclude=tuple(spec.exclude), template=spec.template,
                options=dict(spec.options), catch_up=spec.catch_up,
                grace=spec.grace, enabled=spec.enabled,
                file=shown, line=line_of(lines, where),
            ))
    if problems and not isolate:
        raise ConfigError(problems)
    return jobs


def check_schedules(root: Path, groups) -> list[Problem]:
    """Every problem of ``schedules/`` (for ``check``): file errors, then selectors
    that match no group when ``groups`` (a GroupsConfig) loaded."""
    from broadcaster.targeting import validate  # start-up time: loaded when first used

    tz = groups.defaults.timezone if groups is not None else "Asia/Shanghai"
    try:
        jobs = load_schedules(root, tz)
    except ConfigError as exc:
        return list(exc.problems)
    problems = []
    if groups is not None:
        for job in jobs:
            for message in validate(groups, [*job.to, *job.exclude]):
                problems.append(Problem(job.file, job.line, f"{job.id}.to", message))
    return problems
