"""Which file renders a message: the files of ``templates/`` and the resolution order.

File names: ``<name>.md.j2`` is template ``name``; ``<name>.<channel>.md.j2`` is
its variant for one channel type (``weather.telegram.md.j2``). A name starting
with ``_`` is a partial: never a message by itself, only ``{% include %}``-d.

Resolution of template ``name`` for a group, a channel and (holiday only) a
festival, first existing file wins:

1. **group override**: if the group's ``templates:`` maps ``name`` to another
   template, that one is used instead (``{welcome: welcome_elderly}``);
2. **festival** (holiday kind with a festival): ``<name>_<festival>.<channel>.md.j2``,
   then ``<name>_<festival>.md.j2``;
3. **channel variant**: ``<name>.<channel>.md.j2``;
4. **base**: ``<name>.md.j2``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from broadcaster import channels
from broadcaster.config.groups import Group

SUFFIX = ".md.j2"
NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class TemplateFile:
    """One file of ``templates/``."""

    name: str              # the template's name: ``weather``, ``holiday_chunjie``
    channel: str | None    # the channel type of a variant, else None
    path: Path

    @property
    def key(self) -> str:
        """``weather`` or ``weather.telegram``: the file name without ``.md.j2``."""
        return f"{self.name}.{self.channel}" if self.channel else self.name

    @property
    def filename(self) -> str:
        return self.key + SUFFIX


@dataclass(frozen=True)
class Step:
    """One candidate tried while resolving."""

    candidate: str     # a file name, or the override applied
    found: bool
    why: str           # group override | festival + channel | festival | channel | base

    def __str__(self) -> str:
        if self.why == "group override":
            return f"{self.candidate}  (group override)"
        mark = "used" if self.found else "not found"
        return f"{self.candidate}  ({self.why}: {mark})"


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving a template name: the file chosen and every step tried."""

    requested: str
    name: str                    # after a group override
    kind: str
    channel: str | None
    festival: str | None
    file: TemplateFile | None
    chain: tuple[Step, ...] = field(default_factory=tuple)

    def describe(self) -> list[str]:
        """The chain, one line per step, ending with the file used (if any)."""
        return [str(step) for step in self.chain]


def parse_filename(filename: str) -> tuple[str, str | None] | None:
    """``weather.telegram.md.j2`` -> (``weather``, ``telegram``); None if not a template."""
    if not filename.endswith(SUFFIX):
        return None
    name, _, channel = filename[: -len(SUFFIX)].partition(".")
    return name, channel or None


@dataclass
class Scan:
    files: dict[str, TemplateFile] = field(default_factory=dict)   # by key
    partials: list[TemplateFile] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)     # files with bad names, why


def scan(directory: Path) -> Scan:
    """The template files of ``directory``."""
    out = Scan()
    if not directory.is_dir():
        return out
    known_channels = set(channels.channel_types())
    for path in sorted(directory.iterdir()):
        parsed = parse_filename(path.name)
        if parsed is None or not path.is_file():
            continue
        name, channel = parsed
        if not NAME.match(name):
            out.bad.append((path, "a template name may hold only letters, digits, - and _"))
        elif channel is not None and channel not in known_channels:
            out.bad.append((path, f"{channel!r} is not a channel type "
                                  f"(known: {', '.join(sorted(known_channels))})"))
        elif name.startswith("_"):
            out.partials.append(TemplateFile(name, channel, path))
        else:
            tf = TemplateFile(name, channel, path)
            out.files[tf.key] = tf
    return out


def resolve(
    files: dict[str, TemplateFile],
    name: str,
    kind_of: Callable[[str], str],
    *,
    group: Group | None = None,
    channel: str | None = None,
    festival: str | None = None,
) -> Resolution:
    """Apply the resolution order (module docstring) to the files of ``templates/``.

    ``kind_of`` gives a name's kind (it may read the file's ``{# kind: #}`` comment).
    """
    chain: list[Step] = []
    requested = name
    if group is not None and name in group.templates:
        name = group.templates[name]
        chain.append(Step(f"group {group.id}: templates.{requested} -> {name}", True,
                          "group override"))
    channel = channel or (group.channel_type if group is not None else None)
    kind = kind_of(name)
    bases: list[tuple[str, str]] = []
    if festival and kind == "holiday" and not name.endswith(f"_{festival}"):
        bases.append((f"{name}_{festival}", "festival"))
    bases.append((name, ""))
    chosen: TemplateFile | None = None
    for base, why in bases:
        keys = []
        if channel:
            keys.append((f"{base}.{channel}", f"{why} + channel" if why else "channel"))
        keys.append((base, why or "base"))
        for key, reason in keys:
            chosen = files.get(key)
            chain.append(Step(key + SUFFIX, chosen is not None, reason))
            if chosen is not None:
                break
        if chosen is not None:
            break
    return Resolution(
        requested=requested, name=name, kind=kind, channel=channel, festival=festival,
        file=chosen, chain=tuple(chain),
    )
