"""Selectors over groups.yaml: which groups a message goes to.

- ``all`` — every group; ``id:<group-id>`` — one group; ``<tag>`` — groups with that tag.
- A comma inside one selector is AND: ``street:ninghai-road,kind:grid``.
- Several ``to`` selectors are OR; ``exclude`` selectors remove groups.
- A selector (or one of its terms) that matches no group is an error that names
  it and suggests close matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from broadcaster.errors import InputError, did_you_mean

if TYPE_CHECKING:   # annotations only: a pass with nothing due loads no group models
    from broadcaster.config.groups import Group, GroupsConfig


def _term_matches(term: str, group: Group) -> bool:
    if term == "all":
        return True
    if term.startswith("id:"):
        return group.id == term[3:]
    return term in group.tags


def matches(selector: str, group: Group) -> bool:
    """Whether ``selector`` (one selector, its terms ANDed) selects ``group``."""
    return all(_term_matches(t, group) for t in _terms(selector))


def _terms(selector: str) -> list[str]:
    terms = [t.strip() for t in selector.split(",")]
    if not selector.strip() or any(not t for t in terms):
        raise InputError(f"empty term in selector {selector!r}")
    return terms


def _vocabulary(groups: Iterable[Group]) -> list[str]:
    words = {"all"}
    for g in groups:
        words.add(f"id:{g.id}")
        words.update(g.tags)
    return sorted(words)


def _unknown(term: str, vocabulary: list[str]) -> str:
    return f"selector {term!r} matches no group{did_you_mean(term, vocabulary)}"


def match(config: GroupsConfig, selector: str) -> list[Group]:
    """Groups matching one selector (AND of its comma-separated terms)."""
    terms = _terms(selector)
    vocabulary = None
    for term in terms:
        if not any(_term_matches(term, g) for g in config.groups):
            vocabulary = vocabulary or _vocabulary(config.groups)
            raise InputError(_unknown(term, vocabulary))
    found = [g for g in config.groups if all(_term_matches(t, g) for t in terms)]
    if not found:
        raise InputError(f"selector {selector!r} matches no group (each term matches some, not all together)")
    return found


def select(
    config: GroupsConfig, to: Iterable[str], exclude: Iterable[str] = ()
) -> list[Group]:
    """Groups matched by any ``to`` selector and by no ``exclude`` selector, in file order."""
    to = list(to)
    if not to:
        raise InputError("no target: give at least one selector (e.g. --to all)")
    chosen: set[str] = set()
    for sel in to:
        chosen.update(g.id for g in match(config, sel))
    for sel in exclude:
        chosen.difference_update(g.id for g in match(config, sel))
    return [g for g in config.groups if g.id in chosen]


def validate(config: GroupsConfig, selectors: Iterable[str]) -> list[str]:
    """Error messages for selectors that match nothing (used by ``check``)."""
    errors = []
    for sel in selectors:
        try:
            match(config, sel)
        except InputError as exc:
            errors.append(str(exc))
    return errors
