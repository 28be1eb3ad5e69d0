"""A job as the scheduler runs it, and the valid jobs kept between passes.

``Job`` is what ``config/schedules.py`` validates a ``schedules/*.yaml`` entry
into; ``make_trigger`` turns its cron line into APScheduler's trigger.

``kept_jobs`` / ``keep_jobs``: a cron ``run-once`` validates every job every
minute, and validating means the YAML parser, pydantic and every content kind's
module. When a load finds no problem at all, its jobs are kept (see
``config/kept.py``) under a digest of everything they were made from: the text
of every schedules file, the environment variables those name, the default time
zone, each file's path and the working directory (the ``file`` shown in messages)
and the code and libraries that validate them. Jobs whose ``options`` hold a
variable's value (a token passed to a template, say) are not kept: no value
from the environment is written to the cache. The next load with the same
digest takes them as they are; any change is a miss and a full validation,
which reports every problem as before (a broken file is never kept).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from broadcaster.config import kept
from broadcaster.sources import kinds

if TYPE_CHECKING:
    from collections.abc import Iterator

    from apscheduler.triggers.cron import CronTrigger

_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
KEPT = "schedules"
_ENV_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
# The code a job's validation runs (under broadcaster/), and the libraries it calls.
_CODE = ("config/schedules.py", "config/job.py", "config/fields.py", "config/yamlfile.py",
         "config/timezone.py", "sources/kinds.py", "timeparse.py")
_LIBRARIES = ("pydantic", "pydantic_core", "apscheduler", "yaml")


def _dow_field(text: str) -> str:
    """Cron day-of-week (0/7 = Sunday) → APScheduler names (its numbers start at Monday)."""
    if text == "*":
        return text
    days: list[str] = []
    for item in text.split(","):
        part, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() else None
        if step_text and step is None:
            raise ValueError(f"invalid step in day-of-week {item!r}")
        if re.fullmatch(r"[a-zA-Z]{3}(-[a-zA-Z]{3})?", part) and step is None:
            days.append(part.lower())
            continue
        if part == "*":
            lo, hi = 0, 6
        elif re.fullmatch(r"\d", part):
            lo = hi = int(part)
            if step is not None:
                hi = 6
        elif re.fullmatch(r"\d-\d", part):
            lo, hi = int(part[0]), int(part[2])
        else:
            raise ValueError(f"invalid day-of-week {item!r} (use 0-7 or mon..sun)")
        if hi > 7 or lo > hi:
            raise ValueError(f"invalid day-of-week range {item!r}")
        days.extend(_DOW_NAMES[d % 7] for d in range(lo, hi + 1, step or 1))
    return ",".join(dict.fromkeys(days))


@lru_cache(maxsize=512)   # a pass asks for each job's trigger again; CronTrigger is immutable
def make_trigger(cron: str, tz: ZoneInfo) -> CronTrigger:
    """A CronTrigger for a 5-field crontab line; ValueError with a readable reason."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron needs 5 fields (minute hour day month weekday), got {len(fields)}: {cron!r}"
        )
    minute, hour, day, month, dow = fields
    if day not in ("*", "?") and dow not in ("*", "?"):
        raise ValueError("cron restricts both day-of-month and day-of-week; use one of them")
    from apscheduler.triggers.cron import CronTrigger  # start-up time: only to plan or check a cron

    try:
        return CronTrigger(
            minute=minute, hour=hour, day=day.replace("?", "*"), month=month,
            day_of_week=_dow_field(dow.replace("?", "*")), timezone=tz,
        )
    except ValueError as exc:
        raise ValueError(f"invalid cron {cron!r}: {exc}") from None



@dataclass(frozen=True)
class Job:
    id: str
    cron: str
    timezone: str
    content: str
    to: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    template: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    catch_up: str = "once"
    grace: timedelta = timedelta(hours=1)
    enabled: bool = True
    file: str = ""                  # where it was written, for messages
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def trigger(self) -> CronTrigger:
        return make_trigger(self.cron, self.tz)


def cron_key(job: Job) -> str:
    """What a job's fire times depend on: its cron line and its timezone."""
    return f"{job.cron} {job.timezone}"


def schedule_files(folder: Path) -> list[Path]:
    """The ``*.yaml`` files of ``schedules/``, sorted (none when it is missing)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def jobs_key(root: Path, default_tz: str, environ: dict[str, str] | None = None) -> str | None:
    """The digest the valid jobs of ``root``'s schedules are kept under; None when a
    file cannot be read (the full load reports it)."""
    env = os.environ if environ is None else environ
    files = []
    try:
        for path in schedule_files(root / "schedules"):
            text = path.read_text(encoding="utf-8")
            # as given and resolved: the ``file`` shown in messages is made of both and the cwd
            files.append([str(path), str(path.resolve()), text,
                          [[n, env.get(n)] for n in _variables(text)]])
    except (OSError, UnicodeDecodeError):
        return None
    return kept.digest(KEPT, _code_version(), default_tz, os.getcwd(), files)


def kept_jobs(cache_dir: Path, key: str) -> list[Job] | None:
    """The jobs kept under ``key`` (see ``jobs_key``), or None: load them."""
    data = kept.kept(cache_dir, KEPT, key)
    if not isinstance(data, list):
        return None
    try:
        return [Job(**{**d, "to": tuple(d["to"]), "exclude": tuple(d["exclude"]),
                       "grace": timedelta(seconds=d["grace"])}) for d in data]
    except (KeyError, TypeError, ValueError):
        return None     # a shape this code did not write


def keep_jobs(cache_dir: Path, key: str, jobs: list[Job], root: Path,
              environ: dict[str, str] | None = None) -> None:
    """Keep ``jobs``, the valid jobs of a load that found no problem, under ``key``;
    not when their ``options`` hold the value of a variable ``root``'s schedules name."""
    if kinds.declared_elsewhere() or _options_hold_variables(jobs, root, environ):
        return
    data = []
    for job in jobs:
        d = {name: getattr(job, name) for name in job.__dataclass_fields__}
        d.update(to=list(job.to), exclude=list(job.exclude), grace=job.grace.total_seconds())
        data.append(d)
    kept.keep(cache_dir, KEPT, key, data)   # not when options hold what JSON cannot (a date)


def _variables(text: str) -> list[str]:
    """The ``${NAME}`` variables a schedules file names, sorted."""
    return sorted(set(_ENV_NAME.findall(text)))


def _options_hold_variables(jobs: list[Job], root: Path, environ: dict[str, str] | None) -> bool:
    """Whether a job's options hold (in a string) the value of a variable the schedules
    name: maybe a secret, never written to the cache. An unreadable file counts as yes."""
    env = os.environ if environ is None else environ
    values = set()
    try:
        for path in schedule_files(root / "schedules"):
            values.update(env[n] for n in _variables(path.read_text(encoding="utf-8")) if env.get(n))
    except (OSError, UnicodeDecodeError):
        return True
    return any(value in text for job in jobs for text in _strings(job.options) for value in values)


def _strings(value: Any) -> Iterator[str]:
    """Every string in ``value``: options as YAML gave them (mappings, lists, scalars)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


@lru_cache(maxsize=1)
def _code_version() -> list:
    """Size and change time of the validating code and of the libraries' packages."""
    package = Path(__file__).resolve().parent.parent
    paths = [package / p for p in _CODE]
    paths += [package.parent.joinpath(*m.split(".")).with_suffix(".py") for m in kinds.BUILTIN]
    for name in _LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            paths.append(Path(spec.origin))
    return kept.file_versions(paths)
