"""Who uses which template: groups (through resolution) and schedules (by name)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from broadcaster.config.groups import Group, load_groups
from broadcaster.config.yamlfile import load_folder
from broadcaster.errors import Problem
from broadcaster.sources.kinds import content_kinds
from broadcaster.templating import kinds, samples

if TYPE_CHECKING:
    from broadcaster.templating.templates import Templates


def content_templates() -> dict[str, str]:
    """A schedule's ``content:`` -> the template it renders (when it does not name one)."""
    return {name: k.templates[0].name for name, k in content_kinds().items()
            if k.templates and not k.names_template}


def requested_names(templates: Templates, extra: tuple[str, ...] = ()) -> list[str]:
    """The names content asks for: each kind's own, every ``template``-kind name, ``extra``."""
    names = [k for k in kinds.names() if k != kinds.NAMED]
    names += [n for n in templates.names() if templates.kind_of(n) == kinds.NAMED]
    names += [n for n in extra if n not in names]
    return names


def group_usage(
    templates: Templates, groups: list[Group], extra: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Template key (``weather``, ``weather.telegram``) -> ids of the groups it renders for.

    A ``template``-kind name counts as used by every group: which groups a
    schedule targets is the schedule's business (see ``schedule_usage``).
    """
    names = requested_names(templates, extra)
    used: dict[str, list[str]] = {key: [] for key in templates.files()}
    memo: dict[tuple, set[str]] = {}
    for group in groups:
        signature = (group.channel_type, tuple(sorted(group.templates.items())))
        if signature not in memo:
            memo[signature] = _keys_for(templates, group, names)
        for key in sorted(memo[signature]):
            used.setdefault(key, []).append(group.id)
    return used


def _keys_for(templates: Templates, group: Group, names: list[str]) -> set[str]:
    keys: set[str] = set()
    for name in names:
        resolution = templates.resolve(name, group=group)
        if resolution.file is not None:
            keys.add(resolution.file.key)
        if resolution.kind == "holiday":
            for festival in samples.FESTIVAL_KEYS:
                res = templates.resolve(name, group=group, festival=festival)
                if res.file is not None:
                    keys.add(res.file.key)
    return keys


def schedule_usage(root: Path) -> tuple[dict[str, list[str]], list[Problem]]:
    """Template name -> ids of the schedule jobs that render it, and unreadable files.

    Reads the files without validating the jobs (that is ``check``'s business), so
    that one bad job does not hide which templates the others use.
    """
    used: dict[str, list[str]] = defaultdict(list)
    problems: list[Problem] = []
    by_content = content_templates()
    for shown, doc, _lines in load_folder(root / "schedules", problems):
        jobs = doc.get("jobs") if isinstance(doc, dict) else None
        for i, job in enumerate(jobs if isinstance(jobs, list) else []):
            if not isinstance(job, dict):
                continue
            name = job.get("template") or by_content.get(str(job.get("content")))
            if name:
                used[str(name)].append(str(job.get("id") or f"{Path(shown).stem}#{i + 1}"))
    return dict(used), problems


@dataclass(frozen=True)
class TemplateInfo:
    """One line of ``templates list``."""

    key: str                 # weather, weather.telegram
    name: str
    channel: str | None
    kind: str
    path: Path
    groups: list[str]        # ids of the groups it renders for
    schedules: list[str]     # ids of the jobs that name it
    used_by: list[str]       # other users: announce, members join, weather alerts


def list_templates(templates: Templates) -> tuple[list[TemplateInfo], list[Problem]]:
    """Every template file of ``templates`` with its kind and users, and the problems met.

    Loads ``groups.yaml`` (a ConfigError if it is invalid) and reads ``schedules/``.
    """
    root = templates.root
    groups = load_groups(root).groups if (root / "groups.yaml").exists() else []
    by_schedule, problems = schedule_usage(root)
    by_group = templates.usage(groups, tuple(by_schedule))
    infos = []
    for key, tf in sorted(templates.files().items()):
        kind = templates.kind_of(tf.name)
        used_by = kinds.get(kind).used_by if kind in kinds.names() else None
        names = {tf.name} if kind == kinds.NAMED else {tf.name, kind}
        infos.append(TemplateInfo(
            key=key, name=tf.name, channel=tf.channel, kind=kind, path=tf.path,
            groups=by_group.get(key, []),
            schedules=sorted({job for n in names for job in by_schedule.get(n, [])}),
            used_by=[used_by] if used_by else [],
        ))
    return infos, problems + templates.bad_files()
