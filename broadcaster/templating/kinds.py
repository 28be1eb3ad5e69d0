"""The contract between content and templates: which kinds exist and what each one receives.

Every template receives the common variables ``group``, ``now`` and ``today``,
plus the data of its kind. The kinds, their data names, fields, defaults and
samples are declared beside the content that renders them and registered in
``broadcaster.sources.kinds``; this module reads that registry.
``templates/README.md`` documents exactly these names for editors (a test keeps
the two in step).

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

from broadcaster.sources.kinds import TemplateKind, template_kind, template_kinds

# The names every template receives.
COMMON: tuple[str, ...] = ("group", "now", "today")

# The kind of a template that no kind claims by name: one a schedule or
# ``announce --template`` names directly (rule 4 below).
NAMED = "template"

# Every field every template can reach, as dotted paths; ``x[]`` is "each element
# of the list x". With each kind's ``fields``, this is what templates/README.md must
# document, no more, no less.
COMMON_FIELDS: tuple[str, ...] = (
    "group", "group.id", "group.name", "group.tags", "group.location",
    "group.location.name", "group.location.lat", "group.location.lon",
    "group.location.qweather_id",
    "now",
    "today", "today.date", "today.year", "today.month", "today.day", "today.weekday",
    "today.lunar", "today.lunar_year", "today.solar_term", "today.festivals",
)

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
    if template_kind(base) is not None:     # the longest prefix there can be
        return base
    known = template_kinds()
    for kind in sorted(known, key=len, reverse=True):
        if base.startswith(kind + "_"):
            return kind
    return NAMED


def names() -> list[str]:
    """Every template kind's name, in the registry's order."""
    return list(template_kinds())


def get(kind: str) -> TemplateKind:
    """The template kind ``kind``; KeyError if there is none."""
    found = template_kind(kind)
    if found is None:
        raise KeyError(kind)
    return found


def variables(kind: str) -> tuple[str, ...]:
    """Every top-level name a template of ``kind`` receives."""
    return COMMON + get(kind).data


def fields(kind: str) -> tuple[str, ...]:
    """Every dotted field a template of ``kind`` can reach (common ones included)."""
    return COMMON_FIELDS + get(kind).fields
