"""``groups.yaml``: the groups, their robots, tags, locations, quiet hours and overrides."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from broadcaster import channels
from broadcaster.channels.base import ChannelConfig
from broadcaster.config.fields import DEFAULT_TIMEZONE, SLUG, check_zone
from broadcaster.config.inbound import InboundConfig, secret_inbound_fields
from broadcaster.config.yamlfile import Lines, display_path, line_of, load_yaml, pydantic_problems
from broadcaster.errors import ConfigError, Problem

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MIN_TOKEN = 16


@dataclass(frozen=True)
class QuietHours:
    """A daily window (may cross midnight) in which non-urgent messages wait."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        parts = str(text).split("-")
        if len(parts) != 2 or not all(_HHMM.match(p.strip()) for p in parts):
            raise ValueError(f"quiet hours must look like 22:00-07:00, got {text!r}")
        start, end = (time.fromisoformat(p.strip().zfill(5)) for p in parts)
        if start == end:
            raise ValueError("quiet hours start and end must differ")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: datetime) -> bool:
        t = local.timetz().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def window_end(self, local: datetime) -> datetime:
        """When the window that contains ``local`` ends (``local`` itself if outside)."""
        if not self.contains(local):
            return local
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end = (local + timedelta(days=1)).replace(
                hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0
            )
        # re-localize across DST changes
        return end.astimezone(local.tzinfo)


def _quiet(value: Any) -> QuietHours | None:
    if value in (None, "", False):
        return None
    return QuietHours.parse(value)


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    lat: float | None = None
    lon: float | None = None
    qweather_id: str | None = None  # a QWeather location id, when known

    @field_validator("lat")
    @classmethod
    def _lat(cls, v):
        if v is not None and not -90 <= v <= 90:
            raise ValueError("latitude must be between -90 and 90")
        return v

    @field_validator("lon")
    @classmethod
    def _lon(cls, v):
        if v is not None and not -180 <= v <= 180:
            raise ValueError("longitude must be between -180 and 180")
        return v


_DURATION_TEXT = re.compile(r"^\d+\s*[smhdw]$")


def _duration_text(value: str) -> str:
    if not _DURATION_TEXT.match(str(value).strip()) or int(re.sub(r"\D", "", str(value))) == 0:
        raise ValueError(f"expected a duration like 10m, 12h or 180d, got {value!r}")
    return str(value).strip()


class FaqDefaults(BaseModel):
    """``defaults.faq``: how close a question must be, and how often one entry repeats."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = 0.45         # 0..1: the match score an answer needs
    cooldown: str = "10m"           # the same entry is not repeated in one group within this

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v):
        if not 0 < v <= 1:
            raise ValueError("threshold must be between 0 and 1")
        return v

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v):
        return _duration_text(v)


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = DEFAULT_TIMEZONE
    quiet_hours: str | None = None
    dashboard_token: str | None = None   # a secret: serve's /dashboard wants it as a Bearer token
    tickets: dict[str, Any] | None = None   # work orders: validated by broadcaster.config.staff
    retention: str = "180d"         # resident messages and faq misses are kept this long
    faq: FaqDefaults = Field(default_factory=lambda: FaqDefaults())
    # feeds, calendars and weather may reach private and link-local addresses (an intranet
    # server): off, so that a feed URL or a redirect cannot reach inside the network
    allow_private_feeds: bool = False

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v):
        return check_zone(v)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v):
        return _duration_text(v)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_ok(cls, v):
        _quiet(v)
        return v

    @field_validator("dashboard_token")
    @classmethod
    def _token(cls, v):
        if v is not None and len(v) < MIN_TOKEN:
            raise ValueError(f"dashboard_token must be at least {MIN_TOKEN} characters "
                             "(e.g. from: python -c 'import secrets; print(secrets.token_urlsafe())')")
        return v


class GroupSpec(BaseModel):
    """A group as written in the file (channel still a plain mapping)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    tags: list[str] = []
    channel: dict[str, Any]
    location: Location | None = None
    templates: dict[str, str] = {}
    timezone: str | None = None
    quiet_hours: str | None = None
    chats: list[str] = []           # inbound conversations that are this group: "dingtalk:cid…"

    @field_validator("id")
    @classmethod
    def _id(cls, v):
        if not SLUG.match(v):
            raise ValueError("group id may hold only lowercase letters, digits, - and _")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v):
        for tag in v:
            if not tag or "," in tag or tag != tag.strip() or tag in ("all",) or tag.startswith("id:"):
                raise ValueError(f"invalid tag {tag!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v):
        return None if v is None else check_zone(v)

    @field_validator("chats")
    @classmethod
    def _chats(cls, v):
        from broadcaster.config.inbound import check_chat  # start-up time: loaded when first used

        return [check_chat(c) for c in v]

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_ok(cls, v):
        _quiet(v)
        return v


@dataclass(frozen=True)
class Group:
    """One resident chat group, fully resolved against the defaults."""

    id: str
    name: str
    tags: tuple[str, ...]
    channel: ChannelConfig
    location: Location | None
    templates: dict[str, str]
    timezone: str
    quiet_hours: QuietHours | None
    chats: tuple[str, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def channel_type(self) -> str:
        return self.channel.type

    def context(self) -> dict[str, Any]:
        """What templates see as ``group``."""
        loc = self.location.model_dump() if self.location else None
        return {"id": self.id, "name": self.name, "tags": list(self.tags), "location": loc}


@dataclass
class GroupsConfig:
    path: Path
    defaults: Defaults
    groups: list[Group]
    staff_entries: list[Any] = field(default_factory=list)  # ``staff:`` as written
    lines: Lines | None = None
    staff_env_problems: list[Problem] = field(default_factory=list)
    inbound: InboundConfig = field(default_factory=lambda: InboundConfig())
    chat_problems: list[Problem] = field(default_factory=list)  # chats claimed twice (for check)
    # groups left out because their own entry is invalid (``load_groups(isolate=True)``):
    # id (or ``groups.N`` when even the id is unreadable) -> its problems
    broken: dict[str, list[Problem]] = field(default_factory=dict)

    def broken_problems(self) -> list[Problem]:
        return [p for problems in self.broken.values() for p in problems]

    @cached_property
    def by_id(self) -> dict[str, Group]:
        return {g.id: g for g in self.groups}

    @cached_property
    def staff(self):
        """``staff:`` and ``defaults.tickets``, validated (see broadcaster.config.staff)."""
        from broadcaster.config.staff import load_staff  # start-up time: loaded when first used

        return load_staff(self)

    def destination(self, key: str) -> Group | None:
        """Where a delivery row's ``group`` goes: a group, or ``staff:<id>``'s own channel."""
        if key.startswith("staff:"):
            return self.staff.destinations.get(key)
        return self.by_id.get(key)

    @cached_property
    def by_chat(self) -> dict[str, Group]:
        """``"dingtalk:cid…"`` -> the group that claims it (a chat claimed twice maps to none)."""
        claims: dict[str, list[Group]] = {}
        for g in self.groups:
            for chat in g.chats:
                claims.setdefault(chat, []).append(g)
        return {chat: gs[0] for chat, gs in claims.items() if len(gs) == 1}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.defaults.timezone)

    def secrets(self) -> list[str]:
        out: list[str] = []
        for g in self.groups:
            out.extend(g.channel.secrets())
        if self.defaults.dashboard_token:
            out.append(self.defaults.dashboard_token)
        if self.staff_entries:
            out.extend(self.staff.secrets())
        out.extend(self.inbound.secrets())
        return out


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Defaults()
    groups: list[dict[str, Any]]
    staff: list[Any] = []
    inbound: InboundConfig = Field(default_factory=lambda: InboundConfig())


_ENV_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def secrets_from_environment(data: Any) -> bool:
    """True if every secret channel field is a bare ``${NAME}``: nothing secret in the file.

    Only then may the parsed file be cached under the state directory, which
    must never hold a webhook key, token or signing secret.
    """
    if not secret_inbound_fields(data.get("inbound") if isinstance(data, dict) else None,
                                 _ENV_ONLY):
        return False
    defaults = data.get("defaults") if isinstance(data, dict) else None
    token = defaults.get("dashboard_token") if isinstance(defaults, dict) else None
    if token is not None and not (isinstance(token, str) and _ENV_ONLY.match(token)):
        return False
    groups = data.get("groups") if isinstance(data, dict) else None
    staff = data.get("staff") if isinstance(data, dict) else None
    for raw in [*(groups if isinstance(groups, list) else []),
                *(staff if isinstance(staff, list) else [])]:
        channel = raw.get("channel") if isinstance(raw, dict) else None
        if not isinstance(channel, dict):
            continue
        try:
            fields = channels.get(channel.get("type")).Config.secret_fields
        except KeyError:
            return False
        for name in fields:
            value = channel.get(name)
            if value is not None and not (isinstance(value, str) and _ENV_ONLY.match(value)):
                return False
    return True


def load_groups(
    root: Path, environ: dict[str, str] | None = None, *, cache_dir: Path | None = None,
    isolate: bool = False,
) -> GroupsConfig:
    """Load and validate ``<root>/groups.yaml``; raise ConfigError listing every problem.

    ``cache_dir``: keep the parsed file there (see yamlfile.load_yaml) and the validated
    groups (see broadcaster.config.groupcache) when the file holds no secret.
    ``isolate``: a group whose own entry is invalid (an unset ``${VAR}``, a bad channel)
    is left out and named in ``GroupsConfig.broken`` instead; problems outside the
    groups (the file, ``defaults``, ``inbound``) still raise.
    """
    path = root / "groups.yaml"
    shown = display_path(path)
    env_problems: list[Problem] = []
    inline: list[bool] = []     # the file writes a secret inline: nothing of it is kept

    def cacheable(parsed: Any) -> bool:
        inline.append(not secrets_from_environment(parsed))
        return not inline[-1]

    data, lines = load_yaml(path, environ=environ, problems=env_problems, cache_dir=cache_dir,
                            cacheable=cacheable)
    if not isinstance(data, dict):
        raise ConfigError([Problem(shown, 1, None, "expected a mapping with a 'groups:' list")])
    # an unset variable in a staff member's channel leaves out that member, not every group
    staff_env = [p for p in env_problems if (p.field or "").startswith("staff.")]
    env_problems = [p for p in env_problems if p not in staff_env]
    try:
        top = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(exc, shown, lines)) from None

    by_group: dict[int, list[Problem]] = {}
    for p in env_problems:
        m = _GROUP_FIELD.match(p.field or "")
        if m:
            by_group.setdefault(int(m.group(1)), []).append(p)
    problems: list[Problem] = [p for p in env_problems if not _GROUP_FIELD.match(p.field or "")]
    valid = None
    if cache_dir is not None and not any(inline):
        from broadcaster.config.groupcache import GroupCache  # start-up time: loaded when first used

        valid = GroupCache(cache_dir, path, root)
    groups: list[Group] = []
    broken: dict[str, list[Problem]] = {}
    seen: dict[str, int] = {}
    for i, raw in enumerate(top.groups):
        where = ("groups", i)
        mine = list(by_group.get(i, []))
        kept = valid.get(raw) if valid is not None and not mine else None
        if kept is not None:
            spec, channel = kept
        else:
            spec, channel = _validate(raw, root, shown, lines, where, mine)
            if valid is not None and channel is not None and not mine:
                valid.keep(raw, spec, channel)
        duplicate = spec is not None and spec.id in seen
        if spec is not None and duplicate:
            first = line_of(lines, ("groups", seen[spec.id]))
            problems.append(
                Problem(shown, line_of(lines, where), f"groups.{i}.id",
                        f"duplicate group id {spec.id!r} (first at line {first})")
            )
        if spec is not None:
            seen.setdefault(spec.id, i)
        if mine:
            # a missing variable also makes its field invalid: say it once
            unset = {(p.line, p.field) for p in by_group.get(i, [])}
            mine = [p for p in mine if p in by_group.get(i, []) or (p.line, p.field) not in unset]
            if isolate:
                gid = raw.get("id") if isinstance(raw, dict) else None
                key = gid if isinstance(gid, str) and gid and gid not in broken else f"groups.{i}"
                broken[key] = mine
            else:
                problems.extend(mine)
        if spec is None or channel is None or duplicate or mine:
            continue
        groups.append(
            Group(
                id=spec.id,
                name=spec.name,
                tags=tuple(spec.tags),
                channel=channel,
                location=spec.location,
                templates=dict(spec.templates),
                timezone=spec.timezone or top.defaults.timezone,
                quiet_hours=_quiet(
                    spec.quiet_hours if "quiet_hours" in raw else top.defaults.quiet_hours
                ),
                chats=tuple(spec.chats),
            )
        )
    if problems:    # the file cannot be used as a whole: say everything at once
        raise ConfigError([*problems, *(p for ps in broken.values() for p in ps)])
    if valid is not None:
        valid.save()
    return GroupsConfig(path=path, defaults=top.defaults, groups=groups, staff_entries=top.staff,
                        lines=lines, staff_env_problems=staff_env, inbound=top.inbound,
                        chat_problems=_chat_claims(groups, shown, lines), broken=broken)


_GROUP_FIELD = re.compile(r"^groups\.(\d+)(\.|$)")


def _validate(raw: Any, root: Path, shown: str, lines, where: tuple,
              problems: list[Problem]) -> tuple[GroupSpec | None, ChannelConfig | None]:
    """One group entry validated: its spec and channel (None, and problems, if invalid)."""
    try:
        spec = GroupSpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, shown, lines, where))
        return None, None
    return spec, channel_config(spec.channel, root, shown, lines, (*where, "channel"), problems)


def _chat_claims(groups: list[Group], shown: str, lines) -> list[Problem]:
    """A conversation claimed by two groups: a problem at the second claim (``check`` lists it)."""
    first: dict[str, tuple[int, str]] = {}
    out = []
    for i, g in enumerate(groups):
        for j, chat in enumerate(g.chats):
            if chat in first and first[chat][1] != g.id:
                line = line_of(lines, ("groups", i, "chats", j))
                out.append(Problem(shown, line, f"groups.{i}.chats",
                                   f"chat {chat!r} is already claimed by group {first[chat][1]!r} "
                                   f"(line {first[chat][0]}): a conversation belongs to one group"))
            else:
                first.setdefault(chat, (line_of(lines, ("groups", i, "chats", j)), g.id))
    return out


def channel_config(raw: dict, root: Path, shown: str, lines, where: tuple,
                   problems: list[Problem]) -> ChannelConfig | None:
    """A ``channel:`` mapping validated by its type's Config (None, and problems, if invalid).

    The root is the validation context ``root``: paths in a channel's config
    (a ``file`` channel's directory) are relative to it.
    """
    kind = raw.get("type")
    try:
        cls = channels.get(kind)
    except KeyError:
        known = ", ".join(channels.channel_types())
        problems.append(
            Problem(shown, line_of(lines, (*where, "type")), ".".join(map(str, (*where, "type"))),
                    f"unknown channel type {kind!r} (known: {known})")
        )
        return None
    try:
        return cls.Config.model_validate(raw, context={"root": root})
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, shown, lines, where))
        return None
