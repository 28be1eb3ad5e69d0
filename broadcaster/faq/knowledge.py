"""``Knowledge``: which entry answers a message in a group, and the answer as that group sees it.

Rules (SPEC "faq/"): the bot answers only a message addressed to it (an
@-mention, a reply, a ``/command``) or one that holds a keyword; never a bot's
own message; an entry scoped with ``to:`` answers only in those groups; a
similar-question match needs ``defaults.faq.threshold``; the same entry is
not repeated in one group within ``defaults.faq.cooldown``. An addressed
message that nothing answers is a miss.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from broadcaster.faq.entries import Entry, KnowledgeBase, load
from broadcaster.faq.index import NO_MATCH, Index, Match
from broadcaster.timeparse import parse_duration


@dataclass(frozen=True)
class Decision:
    match: Match
    answer: str | None      # rendered Markdown, when the bot answers
    missed: bool            # addressed, and nothing answered
    reason: str             # answered | miss | cooldown | not addressed | bot | empty


class Knowledge:
    def __init__(self, app, kb: KnowledgeBase | None = None):
        self.app = app
        app.store.ensure()
        self.kb = kb if kb is not None else load(app.root, cache_dir=app.store.dir / "cache")
        self.index = Index.load(self.kb, app.store.dir / "cache")
        faq = app.groups.defaults.faq
        self.threshold = faq.threshold
        self.cooldown = parse_duration(faq.cooldown, option="defaults.faq.cooldown")
        self._scopes: dict[str, frozenset[str]] = {}
        self._last: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()
        self._env = None

    @property
    def empty(self) -> bool:
        return not self.kb.entries

    # -- deciding --------------------------------------------------------------------
    def match(self, text: str, group_id: str) -> Match:
        """The entry for ``text`` in ``group_id`` (threshold applied), or NO_MATCH."""
        m = self.index.match(text, allowed=lambda e: group_id in self._scope(e))
        if m.entry is None or (m.via == "similar" and m.score < self.threshold):
            return Match(None, m.score, "none")
        return m

    def decide(self, *, text: str, group_id: str, addressed: bool, is_bot: bool,
               now: datetime, use_cooldown: bool = True) -> Decision:
        if is_bot:
            return Decision(NO_MATCH, None, False, "bot")
        if not text.strip() or self.empty:
            return Decision(NO_MATCH, None, addressed and bool(text.strip()), "empty")
        m = self.match(text, group_id)
        if m.entry is None:
            return Decision(m, None, addressed, "miss" if addressed else "not addressed")
        if not addressed and m.via not in ("keyword", "regex"):
            return Decision(m, None, False, "not addressed")
        if use_cooldown and not self._take_turn(group_id, m.entry.id, now):
            return Decision(m, None, False, "cooldown")
        group = self.app.groups.by_id[group_id]
        return Decision(m, self.render(m.entry, group, now), False, "answered")

    def remember(self, group_id: str, entry_id: str, at: datetime) -> None:
        """An answer given earlier (read back from the journal at start-up) for the cooldown."""
        with self._lock:
            key = (group_id, entry_id)
            if key not in self._last or self._last[key] < at:
                self._last[key] = at

    def _take_turn(self, group_id: str, entry_id: str, now: datetime) -> bool:
        with self._lock:
            last = self._last.get((group_id, entry_id))
            if last is not None and now - last < self.cooldown:
                return False
            self._last[(group_id, entry_id)] = now
            return True

    def _scope(self, entry: Entry) -> frozenset[str]:
        scope = self._scopes.get(entry.id)
        if scope is None:
            from broadcaster.errors import InputError  # start-up time: loaded when first used
            from broadcaster.targeting import match  # start-up time: loaded when first used

            ids: set[str] = set()
            for selector in entry.to:
                try:
                    ids.update(g.id for g in match(self.app.groups, selector))
                except InputError:
                    continue  # a selector that matches no group: `check` names it
            scope = self._scopes[entry.id] = frozenset(ids)
        return scope

    # -- answers -----------------------------------------------------------------------
    def render(self, entry: Entry, group, now: datetime) -> str:
        """The answer as ``group`` sees it (its channel's own answer file first)."""
        from broadcaster.templating.context import build_context  # start-up time: loaded when first used
        from broadcaster.templating.templates import RENDER_ERRORS  # start-up time: loaded when first used

        env = self._environment()
        path = self.kb.answer_file(entry.id, group.channel_type)
        context: dict[str, Any] = build_context("template", group, now, {})
        try:
            if path is not None:
                template = env.get_template(path.relative_to(self.kb.directory).as_posix())
            else:
                template = env.from_string(entry.answer or "")
            return env.render(template, context).strip()
        except RENDER_ERRORS as exc:
            from broadcaster.errors import Problem
            from broadcaster.templating.errors import TemplateError, problem, reason

            if path is not None:
                raise TemplateError([problem(exc, path, known=context)]) from None
            raise TemplateError([Problem(entry.file, entry.line, f"{entry.id}.answer",
                                         reason(exc, context))]) from None

    def _environment(self):
        if self._env is None:
            from broadcaster.templating.environment import SandboxEnvironment  # start-up time: loaded when first used

            self._env = SandboxEnvironment(self.kb.directory)
        return self._env


def cooldown_of(app) -> timedelta:
    return parse_duration(app.groups.defaults.faq.cooldown, option="defaults.faq.cooldown")
