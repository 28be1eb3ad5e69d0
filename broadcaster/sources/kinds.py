"""Content kinds, declared once beside their source, and the registry that finds them.

A **content kind** is what a schedule posts (``content: news``). Its source module
declares it with one class, registered with ``@register``:

- ``name``: what ``content:`` says in ``schedules/*.yaml``;
- ``options``: the ``options:`` a job of this kind takes (name -> type), or None
  when any mapping is accepted (``template``: its options are the template's ``vars``);
- ``section``: its ``feeds/*.yaml`` section, if it has one (a ``Section``);
- ``templates``: the template kinds it renders, the first one being what a job of
  this kind renders (a ``TemplateKind``);
- ``run(ctx)``: what a job of this kind does when it fires; ``ctx`` (a
  ``RunContext``) renders, queues and keeps the once-only records.

A **template kind** is the contract between content and templates: the names of
its data, every dotted field a template may use (what ``templates/README.md``
documents), defaults, and sample data for ``check`` and ``templates preview``.
One rendered by something other than a schedule (``announcement``, ``welcome``)
is declared by that code with ``register_template``.

The built-in kinds are declared by the modules in ``BUILTIN``, imported when the
registry is first read; a kind declared anywhere else is found once its module
is imported. ``check``, ``templates list``, schedules validation, previews and
every "known: …" message read this registry, and nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from broadcaster.config.groups import Group

# The modules that declare the built-in kinds, in the order they are listed to users.
BUILTIN: tuple[str, ...] = (
    "broadcaster.queue.announce",
    "broadcaster.sources.weather",
    "broadcaster.sources.news",
    "broadcaster.sources.events",
    "broadcaster.sources.holidays",
    "broadcaster.sources.members",
    "broadcaster.sources.template",
    "broadcaster.tickets.notices",
)

Sample = Callable[..., dict[str, Any]]   # sample(now, *, location, festival) -> data


@dataclass(frozen=True)
class TemplateKind:
    """What a template of this kind receives, besides ``group``, ``now`` and ``today``."""

    name: str
    data: tuple[str, ...]                  # top-level names passed to the template
    fields: tuple[str, ...]                # every dotted field (``items[].title``)
    sample: Sample                         # realistic data as of ``now`` (aware)
    defaults: dict[str, Any] = field(default_factory=dict)   # for names a caller leaves out
    used_by: str | None = None             # who renders it, when not a schedule (templates list)
    # when a sample is shown, from its data and ``now`` (default: ``now``)
    shown_at: Callable[[dict[str, Any], datetime], datetime] | None = None
    # named sample cases (``templates preview weather --case sunny``): each gives what
    # it changes in the sample, laid over it with ``overlay`` (a mapping, or a function
    # called like ``sample``), so that every branch of a template can be seen
    cases: dict[str, dict[str, Any] | Sample] = field(default_factory=dict)

    def sample_case(self, case: str | None, now: datetime, **kw: Any) -> dict[str, Any]:
        """The sample as of ``now``, with case ``case`` laid over it (None: the sample
        itself); KeyError for a case the kind does not declare."""
        data = self.sample(now, **kw)
        if case is None:
            return data
        change = self.cases[case]
        return overlay(data, change(now, **kw) if callable(change) else change)


def overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` laid over it: mappings are merged name by name (at any depth),
    anything else in ``top`` (a list, a value, None) replaces what ``base`` has."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = overlay(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Section:
    """A top-level section of ``feeds/*.yaml``: a list of ``model`` entries, each with a
    unique ``id`` (``many``), or one ``model`` mapping written in one file only."""

    name: str
    model: type
    many: bool = False
    default: Callable[[], Any] | None = None   # the value when no file has the section

    def empty(self) -> Any:
        if self.many:
            return []
        return self.default() if self.default is not None else None


class RunContext(Protocol):
    """What a content kind's ``run`` is given (implemented by ``broadcaster.schedule.jobs``)."""

    app: Any                 # the App: root, store, redactor
    job: Any                 # the Job that fired (id, options, tz, template)
    now: datetime            # the pass's time (aware)
    targets: list[Group]     # the groups the job selects
    section: Any             # this kind's feeds section (its empty value when unwritten)
    session: Any             # an HTTP session for the sources
    source: str              # ``job:<id>@<scheduled time>``, the announcements' source

    @property
    def local_now(self) -> datetime: ...

    def problem(self, text: str) -> None:
        """Report something that went wrong; the job's other work goes on."""

    def progress(self, done: int, total: int, failed: int = 0) -> None:
        """Tell how far long work has come (feeds read of all): a bar on a terminal."""

    def nothing(self, why: str) -> None:
        """Say why nothing (or not every group) was queued: ``jobs run`` shows it
        ("no festival today"); a run that queues nothing and says nothing is
        explained by its context (no group matched, nothing new)."""

    def groups_for(self, selectors: Sequence[str], what: str) -> list[Group]:
        """The targets that ``selectors`` (a feed's ``to``) also select."""

    def send(self, template: str, groups: Sequence[Group], data: Data, *,
             festival: str | None = None, **queue: Any) -> str | None:
        """Render ``template`` for each group and queue them as one announcement."""

    def once_only(self, state: str) -> AbstractContextManager[Once]:
        """Per-group once-only sending under one lock; see ``schedule.jobs``."""


Data = dict[str, Any] | Callable[["Group"], dict[str, Any]]
Once = Callable[..., str | None]   # once(key, groups, template, data, *, at=None, **send)


class ContentKind:
    """Base of a content kind. Subclasses set the ClassVars and implement ``run``."""

    name: ClassVar[str]
    options: ClassVar[dict[str, type] | None] = {}
    section: ClassVar[Section | None] = None
    templates: ClassVar[tuple[TemplateKind, ...]] = ()

    @property
    def names_template(self) -> bool:
        """A job of this kind names its template (``template: NAME``) and takes any options."""
        return self.options is None

    def run(self, ctx: RunContext) -> None:
        raise NotImplementedError


_CONTENT: dict[str, ContentKind] = {}
_TEMPLATES: dict[str, TemplateKind] = {}
_ordered: dict[str, TemplateKind] | None = None   # _TEMPLATES in listing order, until it changes
_loaded = False


def register(cls: type[ContentKind]) -> type[ContentKind]:
    """Class decorator: make ``cls`` the content kind ``cls.name``, with its template kinds."""
    if cls.name in _CONTENT and type(_CONTENT[cls.name]) is not cls:
        raise ValueError(f"content kind {cls.name!r} is declared twice")
    for tk in cls.templates:
        register_template(tk)
    _CONTENT[cls.name] = cls()
    return cls


def register_template(kind: TemplateKind) -> TemplateKind:
    """Make ``kind`` known to templates; returns it."""
    if kind.name in _TEMPLATES and _TEMPLATES[kind.name] != kind:
        raise ValueError(f"template kind {kind.name!r} is declared twice")
    global _ordered
    _TEMPLATES[kind.name] = kind
    _ordered = None
    return kind


def unregister(name: str) -> None:
    """Forget content kind ``name`` and its template kinds, or template kind ``name``."""
    global _ordered
    _ordered = None
    kind = _CONTENT.pop(name, None)
    for tk in kind.templates if kind else ():
        _TEMPLATES.pop(tk.name, None)
    _TEMPLATES.pop(name, None)


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN:
            importlib.import_module(module)


def _listed(module: str) -> int:
    """Where a kind declared in ``module`` is listed: built-ins in ``BUILTIN`` order, then
    the others as they were registered (whatever order the modules were imported in)."""
    return BUILTIN.index(module) if module in BUILTIN else len(BUILTIN)


def content_kinds() -> dict[str, ContentKind]:
    """Every content kind, by name: the ``content:`` choices of a schedule."""
    _load()
    return dict(sorted(_CONTENT.items(), key=lambda kv: _listed(type(kv[1]).__module__)))


def get(name: str) -> ContentKind:
    """The content kind ``name``; KeyError if there is none."""
    _load()
    return _CONTENT[name]


def declared_elsewhere() -> list[str]:
    """The content kinds registered so far by modules outside ``BUILTIN`` (a test's toy kind):
    a schedule valid with them is not valid in a process that never imports them."""
    return [name for name, kind in _CONTENT.items() if type(kind).__module__ not in BUILTIN]


def template_kind(name: str) -> TemplateKind | None:
    """The template kind ``name``, or None. A kind registered already is the answer without
    importing the others (a name is never declared twice): ``announce`` imports no content
    kind's module."""
    kind = _TEMPLATES.get(name)
    if kind is None:
        _load()
        kind = _TEMPLATES.get(name)
    return kind


def template_kinds() -> dict[str, TemplateKind]:
    """Every template kind, by name (a kind is listed with the module its sample comes from)."""
    global _ordered
    _load()
    if _ordered is None:   # asked once per group rendered: sorted once
        _ordered = dict(sorted(_TEMPLATES.items(), key=lambda kv: _listed(kv[1].sample.__module__)))
    return dict(_ordered)


def sections() -> dict[str, Section]:
    """Every ``feeds/*.yaml`` section, by name."""
    return {k.section.name: k.section for k in content_kinds().values() if k.section}


def sample_at(now: datetime, days: int, hour: int, minute: int = 0) -> datetime:
    """A sample time: ``days`` after ``now``'s date at ``hour:minute``, in ``now``'s zone."""
    day = now.date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=now.tzinfo)
