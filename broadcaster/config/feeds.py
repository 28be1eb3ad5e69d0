"""``feeds/*.yaml``: news feeds, the weather provider, event calendars, greeting days.

Every ``*.yaml`` / ``*.yml`` file directly under ``feeds/`` is read (``feeds/samples/``
is data, not config). A file holds any of the top-level sections ``news`` (list),
``events`` (list), ``weather`` (mapping) and ``holidays`` (mapping); lists from
several files are concatenated, a mapping section may appear in one file only.
Every problem in every file is reported at once as ``file:line: field: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)

from broadcaster.config.groups import GROUP_ID
from broadcaster.config.yamlfile import line_of, load_folder, pydantic_problems
from broadcaster.errors import ConfigError, Problem
from broadcaster.sources import is_local
from broadcaster.sources.festivals import DEFAULT_GREET, FESTIVALS, SOLAR_TERMS


def _id(v: str) -> str:
    if not GROUP_ID.match(v):
        raise ValueError("id may hold only lowercase letters, digits, - and _")
    return v


def _selectors(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("give at least one selector (e.g. [all])")
    for sel in v:
        if not isinstance(sel, str) or not sel.strip():
            raise ValueError(f"invalid selector {sel!r}")
    return v


def _source(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    scheme = urlsplit(v).scheme.lower()
    if scheme in ("http", "https") or is_local(v):
        return v
    raise ValueError(f"unsupported URL scheme {scheme!r} (use https://, http://, file: or a path)")


# Shared with config/schedules.py: ids and `to:` lists are written the same way there.
Id = Annotated[str, AfterValidator(_id)]
Selectors = Annotated[list[str], AfterValidator(_selectors)]
SourceUrl = Annotated[str, AfterValidator(_source)]


class NewsFeed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    url: SourceUrl                   # http(s) URL, file: URL, or a path relative to the root
    to: Selectors                    # which groups this feed is for
    title: str | None = None         # shown instead of the feed's own title


class WeatherConfig(BaseModel):
    """Provider settings. ``key`` is a secret: write it as ``${QWEATHER_KEY}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["open-meteo", "qweather"] = "open-meteo"
    # open-meteo: https://api.open-meteo.com (default); qweather: use `host`.
    # A `file:DIR` base reads recorded answers from DIR instead (see sources/weather.py).
    base_url: str | None = None
    host: str | None = None
    key: str | None = None
    alerts: bool = True
    heat_c: float = 35.0             # daily maximum at or above → 高温 alert (open-meteo)
    cold_c: float = -5.0             # daily minimum at or below → 低温 alert (open-meteo)

    @field_validator("base_url", "host")
    @classmethod
    def _urls(cls, v):
        return None if v is None else _source(v)

    @model_validator(mode="after")
    def _qweather_needs(self):
        if self.provider == "qweather":
            base = self.host or self.base_url
            if not base:
                raise ValueError("qweather needs `host` (https://<id>.qweatherapi.com)")
            if not is_local(base) and not self.key:   # recorded answers need no key
                raise ValueError("qweather needs `key` (write key: ${QWEATHER_KEY})")
        return self

    @property
    def base(self) -> str:
        if self.provider == "qweather":
            return (self.host or self.base_url or "").rstrip("/")
        return (self.base_url or "https://api.open-meteo.com").rstrip("/")

    def secrets(self) -> list[str]:
        return [self.key] if self.key else []


_WHEN = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def parse_when(value: Any) -> datetime | date:
    """``2026-11-28 09:00`` (local time, no zone) or ``2026-11-28`` (all day)."""
    if isinstance(value, date):          # YAML already read it (a datetime is a date too)
        return value
    text = str(value).strip()
    for fmt in _WHEN:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"invalid time {text!r} (use 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD')")


class EventItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    start: datetime | date           # naive: in the default timezone
    end: datetime | date | None = None
    place: str | None = None
    description: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _when(cls, v):
        return None if v is None else parse_when(v)

    @model_validator(mode="after")
    def _order(self):
        if self.end is not None:
            if isinstance(self.start, datetime) != isinstance(self.end, datetime):
                raise ValueError("start and end must both have a time or both be dates")
            if self.end < self.start:
                raise ValueError("end is before start")
        return self


class EventFeed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    to: Selectors
    ics: SourceUrl | None = None     # iCalendar URL, file: URL or path
    items: list[EventItem] | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.ics is None) == (self.items is None):
            raise ValueError("give either `ics:` (a calendar) or `items:` (events listed here)")
        return self


class HolidaysConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    greet: list[str] = list(DEFAULT_GREET)   # festival keys (and solar-term slugs) greeted
    solar_terms: bool = False                # greet every one of the 24 solar terms too

    @field_validator("greet")
    @classmethod
    def _known(cls, v):
        unknown = [k for k in v if k not in FESTIVALS and k not in SOLAR_TERMS]
        if unknown:
            festivals = [k for k, f in FESTIVALS.items() if f.kind != "solar_term"]
            known = ", ".join([*festivals, "or a solar term such as lichun"])
            raise ValueError(f"unknown festival {', '.join(map(repr, unknown))} (known: {known})")
        return v

    def greets(self, key: str) -> bool:
        return key in self.greet or (self.solar_terms and key in SOLAR_TERMS)


@dataclass
class FeedsConfig:
    news: list[NewsFeed] = field(default_factory=list)
    events: list[EventFeed] = field(default_factory=list)
    weather: WeatherConfig | None = None
    holidays: HolidaysConfig = field(default_factory=HolidaysConfig)
    # (section, id) -> (file, line) where it was written
    lines: dict[tuple[str, str], tuple[str, int | None]] = field(default_factory=dict)

    def secrets(self) -> list[str]:
        return self.weather.secrets() if self.weather else []

    def selectors(self) -> list[tuple[str, str, tuple[str, int | None]]]:
        """Every selector used: (section.id, selector, (file, line)) — for ``check``."""
        out = []
        for kind, feeds in (("news", self.news), ("events", self.events)):
            for f in feeds:
                where = self.lines.get((kind, f.id), ("feeds", None))
                out.extend((f"{kind}.{f.id}", s, where) for s in f.to)
        return out


_SECTIONS = {"news": list, "events": list, "weather": dict, "holidays": dict}


def load_feeds(root: Path, environ: dict[str, str] | None = None) -> FeedsConfig:
    """Load and validate every ``feeds/*.yaml``; raise ConfigError listing every problem."""
    config = FeedsConfig()
    problems: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    single: dict[str, str] = {}
    for shown, data, lines in load_folder(root / "feeds", problems, environ=environ):
        if not isinstance(data, dict):
            problems.append(Problem(shown, 1, None, "expected a mapping of sections: "
                                    "news, events, weather, holidays"))
            continue
        for section, value in data.items():
            where = line_of(lines, (section,))
            kind = _SECTIONS.get(section)
            if kind is None:
                problems.append(Problem(shown, where, str(section),
                                        "unknown section (known: news, events, weather, holidays)"))
                continue
            if not isinstance(value, kind):
                problems.append(Problem(shown, where, section,
                                        f"expected a {'list' if kind is list else 'mapping'}"))
                continue
            if kind is dict:
                if section in single:
                    problems.append(Problem(shown, where, section,
                                            f"already configured in {single[section]}"))
                    continue
                single[section] = f"{shown}:{where}"
                model = WeatherConfig if section == "weather" else HolidaysConfig
                try:
                    setattr(config, section, model.model_validate(value))
                except ValidationError as exc:
                    problems.extend(pydantic_problems(exc, shown, lines, (section,)))
                continue
            model = NewsFeed if section == "news" else EventFeed
            for i, raw in enumerate(value):
                try:
                    item = model.model_validate(raw)
                except ValidationError as exc:
                    problems.extend(pydantic_problems(exc, shown, lines, (section, i)))
                    continue
                line = line_of(lines, (section, i))
                here = f"{shown}:{line}"
                key = (section, item.id)
                if key in seen:
                    message = f"duplicate {section} id {item.id!r} (first at {seen[key]})"
                    problems.append(Problem(shown, line_of(lines, (section, i, "id")),
                                            f"{section}.{i}.id", message))
                    continue
                seen[key] = here
                config.lines[key] = (shown, line)
                getattr(config, section).append(item)
    if problems:
        raise ConfigError(problems)
    return config


def check_feeds(root: Path, groups) -> list[Problem]:
    """Every problem of ``feeds/`` (for ``check``): file errors, then selectors that
    match no group when ``groups`` (a GroupsConfig) loaded."""
    from broadcaster.targeting import validate

    try:
        config = load_feeds(root)
    except ConfigError as exc:
        return list(exc.problems)
    problems = []
    if groups is not None:
        for what, selector, (file, line) in config.selectors():
            for message in validate(groups, [selector]):
                problems.append(Problem(file, line, f"{what}.to", message))
    return problems
