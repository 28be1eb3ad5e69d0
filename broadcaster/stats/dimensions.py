"""How groups are grouped in the figures: by street, community, grid or platform.

A group's street and community are the values of its ``street:`` and
``community:`` tags; its grid is its ``grid:`` tag, else the group itself when
it is tagged ``kind:grid``; its platform is its channel type. A delivery row
whose group is no longer in groups.yaml is counted under ``UNKNOWN``; a group
without the tag under ``NONE``.
"""

from __future__ import annotations

DIMENSIONS = ("street", "community", "grid", "platform")
NONE = "(none)"
UNKNOWN = "(not in groups.yaml)"


def find(config, group_id: str):
    """The group (or a staff member's destination) a delivery row names, or None."""
    destination = getattr(config, "destination", None)
    if destination is not None:
        return destination(group_id)
    return config.by_id.get(group_id)


def tag_value(group, name: str) -> str | None:
    prefix = name + ":"
    return next((t[len(prefix):] for t in group.tags if t.startswith(prefix)), None)


def key(group, dimension: str) -> str:
    """The row a group falls in along ``dimension``."""
    if group is None:
        return UNKNOWN
    if dimension == "platform":
        return group.channel_type
    value = tag_value(group, dimension)
    if value is None and dimension == "grid" and "kind:grid" in group.tags:
        value = group.id
    return value or NONE


def platform(config, group_id: str) -> str:
    return key(find(config, group_id), "platform")
