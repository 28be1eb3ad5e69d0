"""``feeds/*.yaml``: the sections that content kinds declare (news, weather, events, holidays…).

Every ``*.yaml`` / ``*.yml`` file directly under ``feeds/`` is read (``feeds/samples/``
is data, not config). A file holds any of the top-level sections the content kinds
declare (``broadcaster.sources.kinds``: a ``Section`` names its model, and whether it
is a list of entries with unique ids or one mapping); lists from several files are
concatenated, a mapping section may appear in one file only. Every problem in every
file is reported at once as ``file:line: field: message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from broadcaster.config.yamlfile import line_of, load_folder, pydantic_problems
from broadcaster.errors import ConfigError, Problem
from broadcaster.sources import kinds
from broadcaster.targeting import validate


@dataclass
class FeedsConfig:
    """Every section's value by name (``feeds.news``, ``feeds.weather``); a section no file
    writes has its empty value (``[]``, its default, or None)."""

    sections: dict[str, Any] = field(default_factory=dict)
    # (section, id) -> (file, line) where an entry was written
    lines: dict[tuple[str, str], tuple[str, int | None]] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        declared = kinds.sections().get(name)
        if declared is None:
            raise AttributeError(name)
        return declared.empty()

    def secrets(self) -> list[str]:
        out: list[str] = []
        for value in self.sections.values():
            for entry in value if isinstance(value, list) else [value]:
                out.extend(getattr(entry, "secrets", list)())
        return out

    def selectors(self) -> list[tuple[str, str, tuple[str, int | None]]]:
        """Every selector used: (section.id, selector, (file, line)) — for ``check``."""
        out = []
        for name, value in self.sections.items():
            for entry in value if isinstance(value, list) else []:
                where = self.lines.get((name, entry.id), ("feeds", None))
                out.extend((f"{name}.{entry.id}", s, where) for s in getattr(entry, "to", ()))
        return out


def load_feeds(root: Path, environ: dict[str, str] | None = None, *,
               problems: list[Problem] | None = None) -> FeedsConfig:
    """Load and validate every ``feeds/*.yaml``; raise ConfigError listing every problem.

    Given a ``problems`` list, the problems go there instead and what is valid is
    returned (a broken entry or section is left out): a broken feed stops only itself.
    """
    sections = kinds.sections()
    config = FeedsConfig({name: s.empty() for name, s in sections.items()})
    isolate = problems is not None
    problems = [] if problems is None else problems
    single: dict[str, str] = {}
    seen: dict[tuple[str, str], str] = {}
    for shown, data, lines in load_folder(root / "feeds", problems, environ=environ):
        if not isinstance(data, dict):
            problems.append(Problem(shown, 1, None, "expected a mapping of sections: "
                                    f"{', '.join(sections)}"))
            continue
        for name, value in data.items():
            where = line_of(lines, (name,))
            section = sections.get(name)
            if section is None:
                problems.append(Problem(shown, where, str(name),
                                        f"unknown section (known: {', '.join(sections)})"))
            elif not isinstance(value, list if section.many else dict):
                problems.append(Problem(shown, where, name,
                                        f"expected a {'list' if section.many else 'mapping'}"))
            elif section.many:
                _entries(config, section, value, (shown, lines), seen, problems)
            elif name in single:
                problems.append(Problem(shown, where, name, f"already configured in {single[name]}"))
            else:
                single[name] = f"{shown}:{where}"
                try:
                    config.sections[name] = section.model.model_validate(value)
                except ValidationError as exc:
                    problems.extend(pydantic_problems(exc, shown, lines, (name,)))
    if problems and not isolate:
        raise ConfigError(problems)
    return config


def _entries(config: FeedsConfig, section: kinds.Section, value: list, file: tuple,
             seen: dict[tuple[str, str], str], problems: list[Problem]) -> None:
    """Validate the entries of a list section; ids are unique across every file."""
    shown, lines = file
    name = section.name
    for i, raw in enumerate(value):
        try:
            entry = section.model.model_validate(raw)
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, shown, lines, (name, i)))
            continue
        line = line_of(lines, (name, i))
        key = (name, entry.id)
        if key in seen:
            problems.append(Problem(shown, line_of(lines, (name, i, "id")), f"{name}.{i}.id",
                                    f"duplicate {name} id {entry.id!r} (first at {seen[key]})"))
            continue
        seen[key] = f"{shown}:{line}"
        config.lines[key] = (shown, line)
        config.sections[name].append(entry)


def check_feeds(root: Path, groups) -> list[Problem]:
    """Every problem of ``feeds/`` (for ``check``): file errors, then selectors that
    match no group when ``groups`` (a GroupsConfig) loaded."""
    try:
        config = load_feeds(root)
    except ConfigError as exc:
        return list(exc.problems)
    problems = []
    if groups is not None:
        for what, selector, (file, line) in config.selectors():
            for message in validate(groups, [selector]):
                problems.append(Problem(file, line, f"{what}.to", message))
    return problems
