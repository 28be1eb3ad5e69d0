"""``templates preview``: exactly what a group would receive, per channel, before it is sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from broadcaster import channels
from broadcaster.channels.base import Part
from broadcaster.config.groups import Group, load_groups
from broadcaster.config.yamlfile import parse_yaml
from broadcaster.delivery.markdown import title_of
from broadcaster.errors import ConfigError, InputError
from broadcaster.sources.kinds import overlay
from broadcaster.templating import samples
from broadcaster.templating.context import local_now
from broadcaster.templating.resolve import Resolution
from broadcaster.templating.samples import sample_group
from broadcaster.templating.templates import Templates


def channel_parts(
    markdown: str, channel_type: str, group: Group, *, mention_all: bool = False
) -> list[Part]:
    """The parts ``channel_type`` would send for ``markdown``: the group's own robot
    if it uses that type, else the placeholder robot the channel declares."""
    cls = channels.get(channel_type)
    if group.channel_type == channel_type:
        config = group.channel
    else:
        config = cls.Config.model_validate({"type": channel_type, **cls.preview})
    return cls(config, group.id).render(markdown, title=title_of(markdown),
                                        mention_all=mention_all)


@dataclass
class ChannelPreview:
    channel: str
    resolution: Resolution
    markdown: str
    parts: list[Part]
    unit: str            # how the channel counts: bytes, chars, body_bytes

    @property
    def limit(self) -> int:
        return max((p.limit for p in self.parts), default=0)

    @property
    def fits(self) -> bool:
        return len(self.parts) == 1


@dataclass
class PreviewResult:
    name: str
    kind: str
    group: Group
    sample_group: bool
    data_source: str        # "sample data", its case, and the file laid over it
    now: datetime
    channels: list[ChannelPreview]
    case: str | None = None


def load_data_file(path: Path) -> dict[str, Any]:
    """A ``--data`` file: JSON (``.json``) or YAML, a mapping of the kind's names."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else parse_yaml(text, str(path))
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InputError(f"{path}: not valid JSON: {why}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of variable names to values")
    return _parse_times(data)


def _parse_times(value: Any) -> Any:
    """ISO 8601 strings in JSON become dates and datetimes, as the real data has them."""
    if isinstance(value, dict):
        return {k: _parse_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_parse_times(v) for v in value]
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-":
        try:
            return datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
        except ValueError:
            return value
    return value


def preview(
    templates: Templates,
    name: str,
    *,
    group_id: str | None = None,
    channel: str | None = None,
    data_file: Path | None = None,
    festival: str | None = None,
    case: str | None = None,
    now: datetime | None = None,
) -> PreviewResult:
    """Render ``name`` as ``group_id`` (or a sample group) would get it, on ``channel``
    (default: the group's channel type; without a group, every channel type).

    Data: the kind's sample data (``case``: one of its named cases), with
    ``data_file`` laid over it (``overlay``: a mapping merges name by name at any
    depth, anything else replaces). A holiday template is shown as on its festival's next day: the
    festival given, else that of ``data_file``, else that of the file's name
    (``holiday_chunjie``), else ``samples.DEFAULT_FESTIVAL``.
    """
    if channel is not None and channel not in channels.channel_types():
        raise InputError(f"unknown channel type {channel!r} "
                         f"(known: {', '.join(channels.channel_types())})")
    if festival is not None and festival not in samples.FESTIVAL_KEYS:
        raise InputError(f"unknown festival {festival!r} "
                         f"(known: {', '.join(samples.FESTIVAL_KEYS)})")
    group, is_sample = _group(templates.root, group_id)
    moment = local_now(group, now or datetime.now(group.tz))
    resolution = templates.resolve(name, group=group, channel=channel)
    kind = resolution.kind
    given = load_data_file(data_file) if data_file else {}
    if kind == "holiday":
        festival = (festival or _festival_of(given) or samples.festival_in_name(resolution.name)
                    or samples.festival_in_name(name) or samples.DEFAULT_FESTIVAL)
    data = overlay(templates.sample_data(kind, moment, group=group, festival=festival, case=case),
                   given)
    moment = samples.shown_at(kind, data, moment)
    types = [channel] if channel else ([group.channel_type] if not is_sample
                                       else channels.channel_types())
    out = []
    for ch in types:
        res = templates.resolve(name, group=group, channel=ch, festival=festival)
        markdown = templates.render_resolved(res, group=group, data=data, now=moment)
        out.append(ChannelPreview(ch, res, markdown, channel_parts(markdown, ch, group),
                                  channels.get(ch).limit.unit))
    return PreviewResult(
        name=name, kind=kind, group=group, sample_group=is_sample,
        data_source=_source(case, data_file), now=moment, channels=out, case=case,
    )


def _source(case: str | None, data_file: Path | None) -> str:
    shown = f"sample data, case {case}" if case else "sample data"
    return f"{data_file} over {shown}" if data_file else shown


def _group(root: Path, group_id: str | None) -> tuple[Group, bool]:
    if group_id is None:
        return sample_group(), True
    config = load_groups(root)
    if group_id not in config.by_id:
        raise InputError(f"no group {group_id!r} in groups.yaml")
    return config.by_id[group_id], False


def _festival_of(data: dict[str, Any]) -> str | None:
    fest = data.get("festival")
    key = fest.get("key") if isinstance(fest, dict) else None
    return key if key in samples.FESTIVAL_KEYS else None
