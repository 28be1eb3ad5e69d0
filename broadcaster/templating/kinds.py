"""The contract between content and templates: which kinds exist and what each one receives.

Every template receives the common variables ``group``, ``now`` and ``today``,
plus the data of its kind. Code that renders a template passes the kind's data
by these names; ``templates/README.md`` documents exactly these names for
editors (a test keeps the two in step).

The kind of a template name is decided in this order:

1. a leading Jinja comment in its file: ``{# kind: welcome #}``;
2. its name, when it is a kind's name: ``weather`` is a weather template;
3. its name's prefix ``<kind>_``, longest kind first: ``holiday_chunjie`` is a
   holiday template, ``welcome_elderly`` a welcome one, ``weather_alert`` is
   its own kind (not a ``weather_*``);
4. otherwise ``template``: a template a schedule or ``announce --template``
   names directly, which receives ``vars``.
"""

from __future__ import annotations

import re
from typing import Any

# The names every template receives.
COMMON: tuple[str, ...] = ("group", "now", "today")

# kind -> the names of its data, as passed to templates.
KINDS: dict[str, tuple[str, ...]] = {
    "announcement": ("text", "urgent", "sender"),
    "weather": ("weather",),
    "weather_alert": ("alert", "location"),
    "news": ("items",),
    "events": ("events", "days_ahead", "reminder"),
    "holiday": ("festival",),
    "welcome": ("members",),
    "template": ("vars",),
    "ticket_ack": ("ticket",),
    "ticket_assigned": ("ticket", "staff"),
    "ticket_reminder": ("ticket", "staff"),
    "ticket_overdue": ("ticket", "staff", "supervisor"),
    "ticket_digest": ("staff", "tickets"),
    "ticket_resolved": ("ticket",),
}

# Values used when the caller leaves a name out.
DEFAULTS: dict[str, dict[str, Any]] = {
    "announcement": {"urgent": False, "sender": None},
    "events": {"days_ahead": 7, "reminder": False},
    "template": {"vars": {}},
}

# Every field a template can reach, as dotted paths; ``x[]`` is "each element of
# the list x". This is what templates/README.md must document, no more, no less.
COMMON_FIELDS: tuple[str, ...] = (
    "group", "group.id", "group.name", "group.tags", "group.location",
    "group.location.name", "group.location.lat", "group.location.lon",
    "group.location.qweather_id",
    "now",
    "today", "today.date", "today.year", "today.month", "today.day", "today.weekday",
    "today.lunar", "today.lunar_year", "today.solar_term", "today.festivals",
)

_DAY = ("date", "text", "code", "temp_max", "temp_min", "precip_prob")
_TICKET_FOR_STAFF = ("id", "category", "urgent", "status", "text", "reporter", "group_name",
                     "created_at", "deadline", "overdue", "note")
_STAFF_TICKET = ("ticket", *(f"ticket.{f}" for f in _TICKET_FOR_STAFF))


def _person(name: str) -> tuple[str, ...]:
    return (name, f"{name}.id", f"{name}.name")


FIELDS: dict[str, tuple[str, ...]] = {
    "announcement": ("text", "urgent", "sender"),
    "weather": (
        "weather", "weather.location", "weather.provider",
        "weather.current", "weather.current.temp", "weather.current.text",
        "weather.current.code",
        "weather.today", *(f"weather.today.{f}" for f in _DAY),
        "weather.days", *(f"weather.days[].{f}" for f in _DAY),
    ),
    "weather_alert": (
        "alert", "alert.id", "alert.title", "alert.severity", "alert.type", "alert.text",
        "alert.sender", "alert.pub_time", "location",
    ),
    "news": (
        "items", "items[].title", "items[].link", "items[].summary", "items[].published",
        "items[].feed_id", "items[].feed_title",
    ),
    "events": (
        "events", "events[].title", "events[].start", "events[].end", "events[].place",
        "events[].description", "events[].all_day", "days_ahead", "reminder",
    ),
    "holiday": (
        "festival", "festival.key", "festival.name", "festival.kind", "festival.date",
        "festival.lunar", "festival.arrangement", "festival.arrangement.start",
        "festival.arrangement.end", "festival.arrangement.days", "festival.arrangement.workdays",
    ),
    "welcome": ("members",),
    "template": ("vars",),
    # work orders: groups see only what the ack and the result show (names masked, no text)
    "ticket_ack": ("ticket", *(f"ticket.{f}" for f in (
        "id", "category", "urgent", "reporter", "handler", "deadline", "created_at"))),
    "ticket_assigned": (*_STAFF_TICKET, *_person("staff")),
    "ticket_reminder": (*_STAFF_TICKET, *_person("staff")),
    "ticket_overdue": (*_STAFF_TICKET, *_person("staff"), *_person("supervisor")),
    "ticket_digest": (*_person("staff"), "tickets", *(f"tickets[].{f}" for f in _TICKET_FOR_STAFF)),
    "ticket_resolved": ("ticket", *(f"ticket.{f}" for f in (
        "id", "category", "reporter", "handler", "created_at", "resolved_at", "result"))),
}

# Fields whose values are free-form (their insides are not part of the contract).
OPEN_FIELDS = frozenset({"vars"})

_KIND_COMMENT = re.compile(r"\A\s*\{#-?\s*kind\s*:\s*([A-Za-z_]+)\s*-?#\}")


def declared_kind(source: str) -> str | None:
    """The kind a template declares in a leading ``{# kind: NAME #}`` comment, if any."""
    match = _KIND_COMMENT.match(source)
    return match.group(1) if match else None


def kind_by_name(name: str) -> str:
    """The kind a template name implies (rules 2-4 of the module docstring)."""
    base = name.split(".", 1)[0]
    if base in KINDS:
        return base
    for kind in sorted(KINDS, key=len, reverse=True):
        if base.startswith(kind + "_"):
            return kind
    return "template"


def variables(kind: str) -> tuple[str, ...]:
    """Every top-level name a template of ``kind`` receives."""
    return COMMON + KINDS[kind]


def fields(kind: str) -> tuple[str, ...]:
    """Every dotted field a template of ``kind`` can reach (common ones included)."""
    return COMMON_FIELDS + FIELDS[kind]
