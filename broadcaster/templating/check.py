"""``check`` for templates: every problem an editor could ship, found at their desk.

For every file of ``templates/``:

- its name (``<name>[.<channel>].md.j2`` with a known channel type);
- its syntax (``file:line``), its declared kind (``{# kind: … #}``);
- every variable it uses must be one its kind receives — for a channel variant
  this is what catches an override left behind when its base changed;
- it renders with its kind's sample data (undefined fields, sandbox, size);
- it renders for every group that uses it (``group.location`` may be missing...);
- the message fits the channel of each of those groups in one message.

And every group's ``templates:`` override must name an existing template of the
same kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, meta, nodes

from broadcaster.config.groups import Group
from broadcaster.config.yamlfile import display_path, line_of, load_yaml
from broadcaster.errors import ConfigError, Problem
from broadcaster.templating import kinds, samples
from broadcaster.templating.context import local_now
from broadcaster.templating.errors import TemplateError
from broadcaster.templating.resolve import SUFFIX, TemplateFile

if TYPE_CHECKING:
    from broadcaster.templating.templates import Templates


def check_templates(
    templates: Templates, groups: list[Group], *, now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Problem]:
    """``progress(done, total)``: renders done of all (one per template and group, one
    per template with the sample data), told as they are done."""
    checker = _Checker(templates, now)
    problems = list(templates.bad_files())
    problems += checker.overrides(groups)
    usage = templates.usage(groups)
    by_id = {g.id: g for g in groups}
    sample = [samples.sample_group()]
    for partial in templates.partials():
        problems += templates.compile_problems(partial)
    files = sorted(templates.files().items())
    users_of = {key: [by_id[i] for i in usage.get(key, []) if i in by_id] for key, _ in files}
    total, done = sum(1 + len(u) for u in users_of.values()), 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    for key, tf in files:
        users = users_of[key]
        static = checker.static(tf)
        problems += static
        if static:
            tick(1 + len(users))
            continue  # rendering would only repeat the same problem
        with_sample, sample_sizes = checker.render_for_groups(tf, sample, sizes=False, tick=tick)
        for_users, problems_of_size = checker.render_for_groups(tf, users, tick=tick)
        problems += sample_sizes + problems_of_size + _failures(with_sample, for_users)
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))


def _failures(with_sample: dict[Problem, list[str]], for_users: dict[Problem, list[str]]
              ) -> list[Problem]:
    """Each distinct rendering problem once, saying where it showed: with the sample data,
    for which groups, or both (one typo is one problem, not one per way of finding it)."""
    out = []
    for p in dict.fromkeys([*with_sample, *for_users]):
        ids = for_users.get(p, [])
        more = f" and {len(ids) - 1} more" if len(ids) > 1 else ""
        groups = f"group {ids[0]}{more}" if ids else ""
        where = " and for ".join(w for w in ("with sample data" if p in with_sample else "",
                                             groups) if w)
        out.append(_with_context(p, f" ({where})" if p in with_sample else f" (for {where})"))
    return out


class _Checker:
    def __init__(self, templates: Templates, now: datetime | None):
        self.t = templates
        self.now = now
        self._samples: dict[tuple, dict[str, Any]] = {}

    # -- groups.yaml overrides ----------------------------------------------------
    def overrides(self, groups: list[Group]) -> list[Problem]:
        names = set(self.t.names())
        wrong: list[tuple[str, str, str]] = []  # group id, kind asked, what is wrong
        for group in groups:
            for asked, target in sorted(group.templates.items()):
                if target not in names:
                    wrong.append((group.id, asked, f"no template {target!r} "
                                                   f"(no file templates/{target}{SUFFIX})"))
                elif asked in kinds.names() and self.t.kind_of(target) != asked:
                    wrong.append((group.id, asked, f"{target!r} is a {self.t.kind_of(target)} "
                                                   f"template, not {asked}"))
        if not wrong:
            return []
        path = self.t.root / "groups.yaml"
        line = _override_lines(path)
        return [Problem(display_path(path), line(gid, asked), f"{gid}.templates.{asked}", why)
                for gid, asked, why in wrong]

    # -- what can be seen without rendering -----------------------------------------
    def static(self, tf: TemplateFile) -> list[Problem]:
        shown = display_path(tf.path)
        problems = self.t.compile_problems(tf)
        if problems:
            return problems
        source = tf.path.read_text(encoding="utf-8")
        declared = kinds.declared_kind(source)
        if declared is not None and declared not in kinds.names():
            return [Problem(shown, 1, None, f"unknown kind {declared!r} "
                                            f"(known: {', '.join(kinds.names())})")]
        kind = self.t.kind_of(tf.name)
        if declared is not None and declared != kind:
            return [Problem(shown, 1, None, f"declares kind {declared!r} but its base "
                                            f"{tf.name}{SUFFIX} is a {kind} template")]
        return self._unknown_names(tf, source, kind)

    def _unknown_names(self, tf: TemplateFile, source: str, kind: str) -> list[Problem]:
        try:
            ast = self.t.env.parse(source, name=tf.filename, filename=str(tf.path))
        except TemplateSyntaxError:  # already reported by compile_problems
            return []
        known = set(kinds.variables(kind)) | set(self.t.env.globals)
        # a name set anywhere in the file (set, for, macro argument) counts as the
        # file's own; using it too early shows when it is rendered
        local = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
        unknown = sorted(meta.find_undeclared_variables(ast) - known - local)
        if not unknown:
            return []
        first_line = {}
        for node in ast.find_all(nodes.Name):
            if node.ctx == "load" and node.name in unknown:
                first_line.setdefault(node.name, node.lineno)
        base = f" (its base {tf.name}{SUFFIX} receives: " if tf.channel else " (it receives: "
        receives = base + ", ".join(kinds.variables(kind)) + ")"
        return [
            Problem(display_path(tf.path), first_line.get(name), None,
                    f"uses {name!r}, which {kind} templates do not receive{receives}")
            for name in unknown
        ]

    # -- rendering --------------------------------------------------------------------
    def render_for_groups(
        self, tf: TemplateFile, groups: list[Group], *, sizes: bool = True,
        tick: Callable[[], None] = lambda: None,
    ) -> tuple[dict[Problem, list[str]], list[Problem]]:
        """Render for each group: each distinct rendering problem with the ids of the
        groups that have it, and (``sizes``) the messages too big for a group's channel."""
        from broadcaster.templating.preview import channel_parts  # start-up time: loaded when first used

        kind = self.t.kind_of(tf.name)
        festival = samples.festival_in_name(tf.name) if kind == "holiday" else None
        failures: dict[Problem, list[str]] = defaultdict(list)
        size_checked: set[str] = set()
        problems = []
        for group in groups:
            tick()
            now = local_now(group, self.now or datetime.now(group.tz))
            data = self._sample(kind, now, group, festival)
            try:
                markdown = self.t.render_file(tf, kind=kind, group=group, data=data,
                                              now=samples.shown_at(kind, data, now))
            except TemplateError as exc:
                for p in exc.problems:
                    failures[p].append(group.id)
                continue
            if not sizes or group.channel_type in size_checked:
                continue
            size_checked.add(group.channel_type)
            parts = channel_parts(markdown, group.channel_type, group)
            if len(parts) > 1:
                problems.append(Problem(
                    display_path(tf.path), None, None,
                    f"with sample data the message does not fit one {group.channel_type} "
                    f"message ({max(p.limit for p in parts)} per message): group {group.id} "
                    f"would get it in {len(parts)} parts"))
        return failures, problems

    def _sample(self, kind: str, now: datetime, group: Group, festival: str | None):
        location = group.location.name if group.location else None
        key = (kind, now.date(), str(now.tzinfo), location, festival)
        if key not in self._samples:
            self._samples[key] = self.t.sample_data(kind, now, group=group, festival=festival)
        return self._samples[key]


def _override_lines(path: Path) -> Callable[[str, str], int | None]:
    """(group id, kind) -> the line of that group's ``templates: {kind: …}`` in ``path``.

    Read again only when there is a problem to report: groups keep no line numbers.
    """
    try:
        data, lines = load_yaml(path, problems=[])
    except ConfigError:
        return lambda gid, asked: None
    raw = data.get("groups") if isinstance(data, dict) else None
    index = {g.get("id"): i for i, g in enumerate(raw if isinstance(raw, list) else [])
             if isinstance(g, dict)}

    def line(gid: str, asked: str) -> int | None:
        return line_of(lines, ("groups", index[gid], "templates", asked)) if gid in index else None

    return line


def _with_context(p: Problem, context: str) -> Problem:
    return Problem(p.file, p.line, p.field, p.message + context)
