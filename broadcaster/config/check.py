"""``check``: every problem in every file, at once, as ``file:line: message``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from broadcaster.errors import ConfigError, Problem

if TYPE_CHECKING:
    from broadcaster.app import App



def check_all(app: App, warnings: list[Problem] | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[Problem]:
    """Every problem; things that work but look wrong are added to ``warnings``;
    ``progress(done, total)`` told as templates are rendered for the groups."""
    problems: list[Problem] = []
    try:
        groups = app.groups
    except ConfigError as exc:
        problems.extend(exc.problems)
        groups = None

    from broadcaster.config.feeds import check_feeds  # start-up time: loaded when first used
    from broadcaster.config.schedules import check_schedules  # start-up time: loaded when first used

    problems.extend(check_feeds(app.root, groups))
    problems.extend(check_schedules(app.root, groups))
    if groups is not None:
        problems.extend(app.templates.check(groups.groups, progress=progress))
    from broadcaster.config.tickets import check_tickets  # start-up time: loaded when first used

    problems.extend(check_tickets(app.root))
    if groups is not None:
        problems.extend(groups.staff.problems)
        if warnings is not None:
            warnings.extend(groups.staff.warnings)
    if groups is not None:
        problems.extend(groups.chat_problems)
        problems.extend(groups.broken_problems())
    if warnings is not None:
        warnings.extend(damaged_files(app))
    from broadcaster.faq.check import check_faq  # start-up time: loaded when first used

    problems.extend(check_faq(app, groups))
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.message))


def damaged_files(app: App) -> list[Problem]:
    """State files set aside as damaged (``var/damaged/``): named until an operator
    has looked at them and deleted them."""
    return [Problem(d.path, None, None, f"{d.name} was damaged ({d.reason}) and set aside "
                    f"at {d.at:%Y-%m-%d %H:%M} UTC; everything else went on (delete it once read)")
            for d in app.store.damaged()]
