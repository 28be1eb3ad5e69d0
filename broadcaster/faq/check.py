"""``check`` for faq/: entries, regexes, scopes and answers, every problem as ``file:line``.

Each answer is rendered in the sandbox with a sample group (so an undefined
variable is found at the editor's desk) and must fit one message of every
channel the groups in its scope use.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from broadcaster.errors import ConfigError, InputError, Problem
from broadcaster.faq.entries import load


def check_faq(app, groups) -> list[Problem]:
    if not (app.root / "faq").is_dir():
        return []
    problems: list[Problem] = []
    kb = load(app.root, problems)
    if groups is None or not kb.entries:
        return problems
    from broadcaster.faq.knowledge import Knowledge  # start-up time: loaded when first used
    from broadcaster.targeting import match  # start-up time: loaded when first used
    from broadcaster.templating.samples import sample_group  # start-up time: loaded when first used

    knowledge = Knowledge.__new__(Knowledge)  # rendering only: no index is built for check
    knowledge.app, knowledge.kb, knowledge._env = app, kb, None
    now = datetime.now(groups.tz)
    sample = sample_group(groups.defaults.timezone)
    for entry in kb.entries:
        scope = []
        for selector in entry.to:
            try:
                scope.extend(match(groups, selector))
            except InputError as exc:
                problems.append(Problem(entry.file, entry.line, f"{entry.id}.to", str(exc)))
        channels = sorted({g.channel_type for g in scope}) or ["file"]
        for channel in channels:
            group = next((g for g in scope if g.channel_type == channel), None)
            group = group or sample
            try:
                knowledge.render(entry, replace(sample, id=group.id, name=group.name,
                                                channel=group.channel), now)
            except ConfigError as exc:
                problems.extend(exc.problems)
                break
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))
