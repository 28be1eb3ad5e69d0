"""``staff:`` and ``defaults.tickets`` in groups.yaml: who handles work orders, and where.

```yaml
defaults:
  tickets: {fallback: zhang-hua, digest_at: "08:30"}
staff:
  - id: wang-li
    name: 王丽
    covers: [community:huilinlvzhou]      # selectors, as --to: the groups whose tickets they get
    channel: {type: wecom, url: ${WECOM_STAFF_WANG}}   # any channel type
    supervisor: zhang-hua                 # hears of overdue tickets
```

``load_staff(groups)`` validates once and keeps going: a member whose own entry
is invalid (bad id, bad channel, an unset variable) is left out and the problem
kept in ``problems``; an unknown supervisor or fallback is a problem too; a
``covers`` selector that matches no group is a warning. ``check`` lists both.

Each member is also a delivery destination, ``staff:<id>`` (see
``GroupsConfig.destination``): a Group-shaped entry holding the member's own
channel, with the default quiet hours (urgent work ignores them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from broadcaster.channels.base import ChannelConfig
from broadcaster.config.fields import Name, Slug
from broadcaster.config.groups import (
    Group,
    GroupsConfig,
    QuietHours,
    channel_config,
)
from broadcaster.config.yamlfile import Lines, display_path, line_of, pydantic_problems
from broadcaster.errors import InputError, Problem, did_you_mean

DEFAULT_DIGEST_AT = "08:30"
DESTINATION_PREFIX = "staff:"
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class StaffSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Name
    covers: list[str] = []
    channel: dict[str, Any]
    supervisor: str | None = None

    @field_validator("covers")
    @classmethod
    def _covers(cls, v):
        for sel in v:
            if not sel.strip() or any(not t.strip() for t in sel.split(",")):
                raise ValueError(f"empty term in selector {sel!r}")
        return [s.strip() for s in v]


class TicketDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fallback: str | None = None
    digest_at: str = DEFAULT_DIGEST_AT

    @field_validator("digest_at")
    @classmethod
    def _hhmm(cls, v):
        if not _HHMM.match(str(v).strip()):
            raise ValueError(f"digest_at must look like 08:30, got {v!r}")
        return str(v).strip()


@dataclass(frozen=True)
class StaffMember:
    id: str
    name: str
    covers: tuple[str, ...]
    channel: ChannelConfig
    supervisor: str | None

    @property
    def destination(self) -> str:
        """The delivery row ``group`` value that reaches this member."""
        return f"{DESTINATION_PREFIX}{self.id}"


@dataclass
class StaffConfig:
    members: list[StaffMember]
    fallback: str | None = None
    digest_at: time = time(8, 30)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    destinations: dict[str, Group] = field(default_factory=dict)

    @property
    def by_id(self) -> dict[str, StaffMember]:
        return {m.id: m for m in self.members}

    def get(self, staff_id: str) -> StaffMember:
        """The member ``staff_id``; InputError naming close matches if there is none."""
        member = self.by_id.get(staff_id)
        if member is None:
            hint = did_you_mean(staff_id, self.by_id, " (see: staff: in groups.yaml)")
            raise InputError(f"no staff member with id {staff_id!r}{hint}")
        return member

    def handler_for(self, group: Group) -> tuple[StaffMember | None, str]:
        """Who gets ``group``'s tickets, and why: the first member covering it, else the fallback."""
        from broadcaster.targeting import matches  # start-up time: loaded when first used

        for member in self.members:
            for selector in member.covers:
                if matches(selector, group):
                    return member, f"covers {selector}"
        if self.fallback and self.fallback in self.by_id:
            return self.by_id[self.fallback], "fallback"
        return None, "no staff covers this group"

    def secrets(self) -> list[str]:
        return [s for m in self.members for s in m.channel.secrets()]


def load_staff(groups: GroupsConfig) -> StaffConfig:
    """Validate ``staff:`` and ``defaults.tickets`` of a loaded groups.yaml (never raises)."""
    shown = display_path(groups.path)
    lines = groups.lines or Lines("")
    problems: list[Problem] = list(groups.staff_env_problems)
    broken = {_entry_index(p.field) for p in problems}
    members: list[StaffMember] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(groups.staff_entries):
        member = _member(raw, i, groups, shown, lines, problems)
        if member is None or i in broken:
            continue
        if member.id in seen:
            problems.append(Problem(shown, line_of(lines, ("staff", i, "id")), f"staff.{i}.id",
                                    f"duplicate staff id {member.id!r} "
                                    f"(first at line {line_of(lines, ('staff', seen[member.id]))})"))
            continue
        seen[member.id] = i
        members.append(member)
    config = StaffConfig(members=members)
    _defaults(groups, config, shown, lines, problems)
    known = {r["id"] for r in groups.staff_entries  # a broken member is still a known id
             if isinstance(r, dict) and isinstance(r.get("id"), str)}
    for i, raw in enumerate(groups.staff_entries):
        sup = raw.get("supervisor") if isinstance(raw, dict) else None
        if sup is not None and sup not in known:
            problems.append(Problem(shown, line_of(lines, ("staff", i, "supervisor")),
                                    f"staff.{i}.supervisor",
                                    f"unknown staff id {sup!r}{did_you_mean(str(sup), known)}"))
    config.warnings = _cover_warnings(groups, shown, lines)
    config.problems = sorted(set(problems), key=lambda p: (p.line or 0, str(p)))
    config.destinations = {m.destination: _as_group(m, groups) for m in members}
    return config


def _entry_index(dotted: str | None) -> int | None:
    parts = (dotted or "").split(".")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _member(raw: Any, i: int, groups: GroupsConfig, shown: str, lines: Lines,
            problems: list[Problem]) -> StaffMember | None:
    where = ("staff", i)
    try:
        spec = StaffSpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, shown, lines, where))
        return None
    channel = channel_config(spec.channel, groups.path.parent, shown, lines, (*where, "channel"),
                             problems)
    if channel is None:
        return None
    return StaffMember(spec.id, spec.name, tuple(spec.covers), channel, spec.supervisor)


def _defaults(groups: GroupsConfig, config: StaffConfig, shown: str, lines: Lines,
              problems: list[Problem]) -> None:
    raw = groups.defaults.tickets
    if raw is None:
        return
    where = ("defaults", "tickets")
    try:
        spec = TicketDefaults.model_validate(raw)
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, shown, lines, where))
        return
    hh, mm = (int(x) for x in spec.digest_at.split(":"))
    config.digest_at = time(hh, mm)
    if spec.fallback is not None and spec.fallback not in config.by_id:
        problems.append(Problem(shown, line_of(lines, (*where, "fallback")),
                                "defaults.tickets.fallback",
                                f"unknown staff id {spec.fallback!r}"
                                f"{did_you_mean(spec.fallback, config.by_id)}"))
        return
    config.fallback = spec.fallback


def _cover_warnings(groups: GroupsConfig, shown: str, lines: Lines) -> list[Problem]:
    from broadcaster.targeting import match  # start-up time: loaded when first used

    out = []
    for i, raw in enumerate(groups.staff_entries):
        covers = raw.get("covers") if isinstance(raw, dict) else None
        for j, selector in enumerate(covers if isinstance(covers, list) else []):
            if not isinstance(selector, str):
                continue
            try:
                match(groups, selector)
            except InputError as exc:
                out.append(Problem(shown, line_of(lines, ("staff", i, "covers", j)),
                                   f"staff.{i}.covers", f"{exc} (no ticket will reach them "
                                                        "through it)"))
    return out


def _as_group(member: StaffMember, groups: GroupsConfig) -> Group:
    quiet = groups.defaults.quiet_hours
    return Group(
        id=member.destination,
        name=member.name,
        tags=("staff",),
        channel=member.channel,
        location=None,
        templates={},
        timezone=groups.defaults.timezone,
        quiet_hours=QuietHours.parse(quiet) if quiet else None,
    )
