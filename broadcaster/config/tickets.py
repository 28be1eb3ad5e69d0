"""``tickets.yaml``: the complaint categories, their keywords and their deadlines.

```yaml
prefix: GL                     # optional: ticket numbers start with it
categories:                    #   (default: the initials of the group's district tag)
  - id: sanitation
    name: 卫生
    keywords: [卫生, 垃圾, 脏乱]  # a resident message containing one opens a ticket
    deadline: 2 workdays       # N workdays (statutory calendar, 调休 included) | N h | N d
    urgent: {keywords: [漏水, 燃气, 着火], deadline: 4h}
```

The file is optional: without it no ticket is opened. ``load_tickets`` returns
None then; otherwise the validated config, or ConfigError listing every
problem as ``file:line: field: message``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator

from broadcaster.config.fields import Name, Slug
from broadcaster.config.yamlfile import display_path, line_of, load_yaml, pydantic_problems
from broadcaster.errors import ConfigError, Problem

FILE_NAME = "tickets.yaml"
PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,5}$")
_DEADLINE = re.compile(r"^\s*(\d+)\s*(workdays?|h|hours?|d|days?)\s*$", re.I)
_UNITS = {"workday": "workdays", "workdays": "workdays", "h": "hours", "hour": "hours",
          "hours": "hours", "d": "days", "day": "days", "days": "days"}
MAX_AMOUNT = {"workdays": 250, "hours": 24 * 366, "days": 366}


@dataclass(frozen=True)
class Deadline:
    """``2 workdays``, ``4 h``, ``3 d``: how long a ticket may take."""

    amount: int
    unit: Literal["workdays", "hours", "days"]

    @classmethod
    def parse(cls, text: Any) -> Deadline:
        m = _DEADLINE.match(str(text))
        if not m:
            raise ValueError(f"deadline must be 'N workdays', 'N h' or 'N d', got {text!r}")
        amount, unit = int(m.group(1)), _UNITS[m.group(2).lower()]
        if not 1 <= amount <= MAX_AMOUNT[unit]:
            raise ValueError(f"deadline {text!r}: {unit} must be between 1 and {MAX_AMOUNT[unit]}")
        return cls(amount, unit)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return {"workdays": f"{self.amount} workdays", "hours": f"{self.amount}h",
                "days": f"{self.amount}d"}[self.unit]


def normalize(text: str) -> str:
    """Text as keywords are compared: full-width forms folded (NFKC), Latin lower-cased."""
    return unicodedata.normalize("NFKC", text).casefold()


def _keywords(values: list[str]) -> list[str]:
    if not values:
        raise ValueError("give at least one keyword")
    out = []
    for kw in values:
        if not str(kw).strip():
            raise ValueError("a keyword must not be empty")
        out.append(normalize(str(kw).strip()))
    return out


def _deadline(value: Any) -> str:
    Deadline.parse(value)
    return str(value)


Keywords = Annotated[list[str], AfterValidator(_keywords)]
DeadlineText = Annotated[str, BeforeValidator(_deadline)]


class UrgentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keywords: Keywords
    deadline: DeadlineText


class CategorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Name
    keywords: Keywords
    deadline: DeadlineText
    urgent: UrgentSpec | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str | None = None
    categories: list[dict[str, Any]]

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v):
        if v is not None and not PREFIX.match(v):
            raise ValueError("prefix must be 1-6 capital letters or digits, starting with a letter")
        return v


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    keywords: tuple[str, ...]
    deadline: Deadline
    urgent_keywords: tuple[str, ...] = ()
    urgent_deadline: Deadline | None = None

    def deadline_for(self, urgent: bool) -> Deadline:
        return self.urgent_deadline if urgent and self.urgent_deadline else self.deadline


@dataclass(frozen=True)
class TicketsConfig:
    path: Path
    prefix: str | None
    categories: tuple[Category, ...]

    @property
    def by_id(self) -> dict[str, Category]:
        return {c.id: c for c in self.categories}


def load_tickets(root: Path) -> TicketsConfig | None:
    """``<root>/tickets.yaml`` validated; None when there is no such file."""
    path = root / FILE_NAME
    if not path.exists():
        return None
    shown = display_path(path)
    data, lines = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([Problem(shown, 1, None, "expected a mapping with a 'categories:' list")])
    try:
        top = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(exc, shown, lines)) from None
    problems: list[Problem] = []
    categories: list[Category] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(top.categories):
        where = ("categories", i)
        cid = raw.get("id")
        if isinstance(cid, str) and cid in seen:
            problems.append(Problem(shown, line_of(lines, (*where, "id")), f"categories.{i}.id",
                                    f"duplicate category id {cid!r} "
                                    f"(first at line {line_of(lines, ('categories', seen[cid]))})"))
            continue
        if isinstance(cid, str):
            seen[cid] = i
        try:
            spec = CategorySpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, shown, lines, where))
            continue
        categories.append(_category(spec))
    if not categories and not problems:
        problems.append(Problem(shown, line_of(lines, ("categories",)), "categories",
                                "no category: a ticket needs at least one"))
    if problems:
        raise ConfigError(problems)
    return TicketsConfig(path=path, prefix=top.prefix, categories=tuple(categories))


def _category(spec: CategorySpec) -> Category:
    urgent = spec.urgent
    return Category(
        id=spec.id,
        name=spec.name,
        keywords=tuple(spec.keywords),
        deadline=Deadline.parse(spec.deadline),
        urgent_keywords=tuple(urgent.keywords) if urgent else (),
        urgent_deadline=Deadline.parse(urgent.deadline) if urgent else None,
    )


def check_tickets(root: Path) -> list[Problem]:
    """Every problem of tickets.yaml (none when there is no such file)."""
    try:
        load_tickets(root)
    except ConfigError as exc:
        return list(exc.problems)
    return []
