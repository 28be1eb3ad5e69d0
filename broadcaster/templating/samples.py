"""Sample data for every kind (each kind declares its own) and a sample group, for
``check`` and ``templates preview``.

Dates are relative to ``now`` so that a preview reads naturally ("明天上午9:00");
with a fixed ``now`` the samples are fixed (golden files rely on it). A holiday
sample is shown on its festival's day (``shown_at``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from broadcaster import channels
from broadcaster.config.groups import Group, Location
from broadcaster.errors import InputError, did_you_mean
from broadcaster.sources import festivals, holidays
from broadcaster.templating import kinds

DEFAULT_LOCATION = "鼓楼区"
DEFAULT_FESTIVAL = holidays.DEFAULT_FESTIVAL

# Every festival key the holiday source can greet (``holiday_<key>.md.j2``).
FESTIVAL_KEYS: tuple[str, ...] = festivals.KEYS

SAMPLE_GROUP_ID = "sample-group"


def sample_group(timezone: str = "Asia/Shanghai") -> Group:
    """A typical grid group, for previews and checks without a real one."""
    return Group(
        id=SAMPLE_GROUP_ID,
        name="汇林绿洲社区第1网格群",
        tags=("district:gulou", "street:ninghai-road", "community:huilinlvzhou", "kind:grid"),
        channel=channels.get("file").Config.model_validate({"type": "file", "path": "var/out"}),
        location=Location(name=DEFAULT_LOCATION, lat=32.066, lon=118.778),
        templates={},
        timezone=timezone,
        quiet_hours=None,
    )


def festival_in_name(name: str) -> str | None:
    """``holiday_chunjie`` -> ``chunjie``: the festival a per-festival file is for, if any."""
    key = name.removeprefix("holiday_")
    return key if key != name and key in FESTIVAL_KEYS else None


def shown_at(kind: str, data: dict[str, Any], now: datetime) -> datetime:
    """When a sample is shown: ``now``, unless its kind says otherwise (a holiday
    greeting is shown at 8:00 on its festival's day)."""
    declared = kinds.get(kind)
    return declared.shown_at(data, now) if declared.shown_at else now


def sample_data(
    kind: str,
    now: datetime,
    *,
    location: str | None = None,
    festival: str | None = None,
    case: str | None = None,
) -> dict[str, Any]:
    """Sample data of template kind ``kind`` as of ``now`` (aware), declared by the kind;
    with ``case``, that named case of it (``InputError`` naming the kind's cases if unknown)."""
    try:
        declared = kinds.get(kind)
    except KeyError:
        raise KeyError(f"unknown template kind {kind!r}") from None
    if case is not None and case not in declared.cases:
        known = ", ".join(declared.cases)
        raise InputError(f"no case {case!r} for {kind} templates" + (
            f" (cases: {known}){did_you_mean(case, declared.cases)}" if known
            else f": {kind} has no named cases (see templates/README.md)"))
    return declared.sample_case(case, now, location=location or DEFAULT_LOCATION,
                                festival=festival)


def cases(kind: str) -> tuple[str, ...]:
    """The named sample cases of template kind ``kind``, in declared order."""
    return tuple(kinds.get(kind).cases)
